"""Shift consistency as an mmengine metric, beside mmseg's IoUMetric."""
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log
from mmseg.registry import METRICS

from ..models.segmentors.shift_tta import SHIFT_FIELD
from .shift_metrics import (aligned_ground_truth, class_consistency,
                            compute_shift_metrics, score_image,
                            single_class_warning)


@METRICS.register_module()
class ShiftConsistencyMetric(BaseMetric):
    """mASSC and the other shift-consistency keys (percent).

    Scores the ``shift_predictions`` that
    :class:`~tips_mmseg.models.ShiftTTAModel` adds to every prediction, so
    the model must be wrapped in it (or the run must carry
    ``ShiftConsistencyHook``, which does both)::

        model = dict(type='ShiftTTAModel', module=segmentor_cfg)
        val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                         dict(type='ShiftConsistencyMetric')]

    The keys depend on the wrapper's ``modes``: ``'standard'`` gives
    ``mASSC``, ``mASSC_worst``, ``mASSC_boundary``, ``shift_fidelity``,
    ``shift_mIoU`` (and ``mASSC_std`` with explicit shifts),
    ``'circular'`` ``mASSC_circular``, ``'crop'`` ``mASSC_crop``,
    ``'subpixel'`` ``mASSC_subpixel`` (definitions: docs/evaluation.md).
    Per-image scores are kept per shift and gathered from every process
    by mmengine's metric collection, so 1 and N processes give the same
    numbers; ``save_best='mASSC'`` works like any metric. The consistency
    per ground-truth class is logged (and kept in
    :attr:`class_consistency`), and a warning is logged when the model
    predicts (nearly) one class, which makes every consistency trivially
    high.

    Args:
        ignore_index (int): Ground-truth label not scored; use the
            IoUMetric's. Defaults to 255.
        boundary_width (int): Half-width (px) of the band around
            ground-truth class boundaries scored by ``mASSC_boundary``; 3
            suits 64 px inputs, scale it with the input. Defaults to 3.
        score_labels (bool): Also score against the ground truth
            (``mASSC_boundary``, ``shift_fidelity``, ``shift_mIoU``, per
            class); False measures consistency only and needs no
            annotations. Defaults to True.
        single_class_threshold (float): Warn when one class takes at least
            this share of the predicted pixels. Defaults to 0.99.
        collect_device (str): ``'cpu'`` or ``'gpu'``, as BaseMetric.
            Defaults to ``'cpu'``.
        prefix (str, optional): Prefix of the keys, as BaseMetric.
            Defaults to None.
    """

    def __init__(self,
                 ignore_index: int = 255,
                 boundary_width: int = 3,
                 score_labels: bool = True,
                 single_class_threshold: float = 0.99,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 **kwargs):
        super().__init__(collect_device=collect_device, prefix=prefix)
        if kwargs:
            raise TypeError(
                'ShiftConsistencyMetric got model options '
                f'{sorted(kwargs)}: the shifts are drawn by the model '
                "wrapper; put them in model=dict(type='ShiftTTAModel', "
                'module=..., ...) or use ShiftConsistencyHook, which takes '
                'both.')
        if int(boundary_width) != boundary_width or boundary_width < 1:
            raise ValueError('boundary_width must be a whole number of '
                             f'pixels >= 1, got {boundary_width!r}.')
        self.ignore_index = int(ignore_index)
        self.boundary_width = int(boundary_width)
        self.score_labels = score_labels
        self.single_class_threshold = single_class_threshold
        #: ``{class name: %}`` of the last :meth:`compute_metrics`.
        self.class_consistency: Dict[str, float] = {}
        #: The single-class warning of the last run (or None).
        self.warning: Optional[str] = None

    @property
    def class_names(self) -> Optional[Sequence[str]]:
        return (self.dataset_meta or {}).get('classes')

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        """Score every image of a batch (on its device) into one record."""
        names = self.class_names
        for sample in data_samples:
            shifted = sample.get(SHIFT_FIELD)
            if shifted is None:
                raise KeyError(
                    'ShiftConsistencyMetric found no shift predictions: '
                    "wrap the segmentor, model = dict(type='ShiftTTAModel', "
                    "module=<segmentor>), or add dict(type="
                    "'ShiftConsistencyHook') to custom_hooks instead of the "
                    'metric.')
            gt = None
            if 'gt_sem_seg' in sample:
                box = shifted['box']
                gt = aligned_ground_truth(sample['gt_sem_seg']['data'], sample,
                                          (box[1] - box[0], box[3] - box[2]))
            self.results.append(
                score_image(shifted,
                            gt,
                            ignore_index=self.ignore_index,
                            num_classes=len(names) if names else None,
                            boundary_width=self.boundary_width,
                            score_labels=self.score_labels))

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        """Reduce the records (dataset order, all processes) to the keys."""
        metrics = compute_shift_metrics(results)
        names = self.class_names
        print_log(f'shift consistency over {len(results)} images: ' +
                  ', '.join(f'{k}: {v:.2f}' for k, v in metrics.items()),
                  logger='current')
        self.class_consistency = class_consistency(results, names)
        if self.class_consistency:
            print_log('shift consistency per class: ' +
                      ', '.join(f'{k}: {v:.2f}'
                                for k, v in self.class_consistency.items()),
                      logger='current')
        self.warning = single_class_warning(results,
                                            self.single_class_threshold, names)
        if self.warning:
            print_log(f'ShiftConsistencyMetric: {self.warning}',
                      logger='current',
                      level=30)
        return metrics
