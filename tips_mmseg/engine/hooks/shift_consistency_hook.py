"""A hook adding shift-consistency metrics to mmseg's val and test loops."""
import time
from typing import Optional, Sequence

from mmengine.dist import all_gather_object, get_world_size
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from tips_mmseg.evaluation.shift_evaluator import (DEFAULT_MODES,
                                                   ShiftConsistencyEvaluator,
                                                   dataset_num_classes,
                                                   image_index_map,
                                                   image_index_of)
from tips_mmseg.evaluation.shift_metrics import (class_consistency,
                                                 compute_shift_metrics,
                                                 single_class_warning)


@HOOKS.register_module()
class ShiftConsistencyHook(Hook):
    """Adds shift-consistency metrics (percent) beside mIoU.

    One line in the config is enough::

        custom_hooks = [dict(type='ShiftConsistencyHook')]

    By default (``modes=('standard', 'circular')``) the keys are ``mASSC``,
    ``mASSC_circular``, ``mASSC_worst``, ``mASSC_boundary``,
    ``shift_fidelity`` and ``shift_mIoU``; ``'crop'`` adds ``mASSC_crop``
    and ``'subpixel'`` adds ``mASSC_subpixel``::

        dict(type='ShiftConsistencyHook', shifts=[(0, 1), (3, -5)],
             modes=('standard', 'circular', 'crop', 'subpixel'))

    In every val and test run, each image is also run shifted (after the data
    preprocessor, on the normalized input, through the model's own
    ``inference``: whole or sliding window) and scored as
    ``docs/evaluation.md`` defines. The unshifted prediction is taken
    from the loop's own forward, so the only extra work is the shifted
    forwards. Results are gathered from all processes and deduplicated by
    image index, so 1 and N processes, any batch size and any order give the
    same numbers. The metrics go into the dict that ``runner.val()`` /
    ``runner.test()`` return (``save_best='mASSC'`` works), the log line and
    every visualization backend. The shifts are checked against the size of
    the first val image before training starts (and of the first test image
    before a test run), so a ``max_shift`` too large for the input fails at
    once with the fix in the message. A warning is logged when the model
    predicts (nearly) one class, which makes every consistency trivially
    high.

    Args:
        shifts (Sequence[tuple[int, int]], optional): Explicit integer
            ``(dh, dw)`` shifts used for every image (standard, circular and
            crop modes). If None, ``num_shifts`` shifts are drawn per image.
            Defaults to None.
        num_shifts (int): Shifts drawn per image. Defaults to 5.
        max_shift (int): Largest ``|dh|``, ``|dw|`` drawn, and the margin
            ``M`` of the crop windows ``(H - M) x (W - M)``. Must be smaller
            than the network input (crop: below half of it).
            Defaults to 32.
        seed (int): Seed of the per-image draws. Defaults to 0.
        interval (int): Compute the metrics every ``interval`` validation
            runs (1: every run). Test runs always compute them.
            Defaults to 1.
        modes (Sequence[str]): Any of ``'standard'``, ``'circular'``,
            ``'crop'``, ``'subpixel'``. Defaults to
            ``('standard', 'circular')``.
        shift_batch_size (int, optional): Most shifted images per forward
            (lower it if memory is short); None: all shifted copies of a data
            batch in one forward. Defaults to None.
        ignore_index (int, optional): Ground-truth label not scored; None
            takes it from the evaluator's metric (as IoUMetric uses it),
            else 255. Defaults to None.
        val (bool): Run in val loops. Defaults to True.
        test (bool): Run in test loops. Defaults to True.
        subpixel_shifts (Sequence[tuple[float, float]], optional):
            Explicit fractional shifts for ``'subpixel'``; None draws
            ``num_shifts`` per image from ``(-1, 1)^2``. Defaults to None.
        boundary_width (int): Half-width (px) of the band around
            ground-truth class boundaries scored by ``mASSC_boundary``; 3
            suits 64 px inputs, scale it with the input. Defaults to 3.
        single_class_threshold (float): Warn when one class takes at least
            this share of the predicted pixels. Defaults to 0.99.
    """

    # Before RuntimeInfoHook (VERY_HIGH) copies the metrics to the message
    # hub, and thus before the logger and CheckpointHook's save_best read
    # them.
    priority = 'HIGHEST'

    def __init__(self,
                 shifts: Optional[Sequence[Sequence[int]]] = None,
                 num_shifts: int = 5,
                 max_shift: int = 32,
                 seed: int = 0,
                 interval: int = 1,
                 modes: Sequence[str] = DEFAULT_MODES,
                 shift_batch_size: Optional[int] = None,
                 ignore_index: Optional[int] = None,
                 val: bool = True,
                 test: bool = True,
                 subpixel_shifts: Optional[Sequence[Sequence[float]]] = None,
                 boundary_width: int = 3,
                 single_class_threshold: float = 0.99):
        if interval < 1:
            raise ValueError(f'interval must be >= 1, got {interval}.')
        self.evaluator = ShiftConsistencyEvaluator(
            shifts=shifts,
            num_shifts=num_shifts,
            max_shift=max_shift,
            seed=seed,
            modes=modes,
            shift_batch_size=shift_batch_size,
            subpixel_shifts=subpixel_shifts,
            boundary_width=boundary_width)
        self.single_class_threshold = single_class_threshold
        self._class_names = None
        self.ignore_index = ignore_index
        self.interval = interval
        self.enabled = dict(val=val, test=test)
        self._val_runs = 0
        self._active = False
        self._results = []
        self._index_map = {}
        self._model = None
        self._captured = None
        self._in_hook = False
        #: Seconds the hook itself took in the last run (for the benchmark).
        self.hook_time = 0.0

    # --- loop entry / exit -------------------------------------------------
    def before_train(self, runner) -> None:
        """Fail before the first iteration if the shifts do not fit the
        val images (hours of training would otherwise end in an error)."""
        loop = getattr(runner, '_val_loop', None)
        if self.enabled['val'] and loop is not None and not isinstance(
                loop, dict):
            self.check_input_size(loop.dataloader.dataset, 'val',
                                  'training starts')

    def check_input_size(self, dataset, split: str, when: str) -> None:
        """Check the shifts against the first image of ``dataset`` as the
        network sees it (after its test pipeline).

        Raises:
            ValueError: Naming the shift, the image size and the fix.
        """
        try:
            sample = dataset[0]
            size = tuple(sample['inputs'].shape[-2:])
        except Exception:  # noqa: BLE001 - no cheap way to know: check later
            return
        try:
            self.evaluator.check_size(size)
        except ValueError as error:
            raise ValueError(
                f'ShiftConsistencyHook does not fit the {split} images '
                f'(checked on the first, {size[0]}x{size[1]} px after the '
                f'test pipeline, before {when}): {error} Change max_shift / '
                'shifts / subpixel_shifts of the hook in custom_hooks.'
            ) from None

    def before_val_epoch(self, runner) -> None:
        self._val_runs += 1
        active = (self.enabled['val']
                  and self._val_runs % self.interval == 0)
        self._start(runner, active, runner.val_loop, runner.val_evaluator,
                    'val')

    def before_test_epoch(self, runner) -> None:
        self._start(runner, self.enabled['test'], runner.test_loop,
                    runner.test_evaluator, 'test')

    def after_val_iter(self, runner, batch_idx, data_batch=None,
                       outputs=None) -> None:
        self._process(runner, data_batch, outputs)

    def after_test_iter(self, runner, batch_idx, data_batch=None,
                        outputs=None) -> None:
        self._process(runner, data_batch, outputs)

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._finish(runner, metrics)

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._finish(runner, metrics)

    # --- implementation ----------------------------------------------------
    def _start(self, runner, active: bool, loop, evaluator,
               split: str) -> None:
        self._restore()
        self._results = []
        self.hook_time = 0.0
        self.evaluator.forward_time = 0.0
        self._active = active
        if not active:
            return
        start = time.perf_counter()
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not callable(getattr(model, 'inference', None)):
            raise TypeError(
                'ShiftConsistencyHook needs an mmseg segmentor with an '
                f'`inference(inputs, batch_img_metas)` method; '
                f'{type(model).__name__} has none.')
        self._model = model
        self.evaluator.ignore_index = self._find_ignore_index(evaluator)
        dataset = loop.dataloader.dataset
        self.check_input_size(dataset, split, 'the first forward')
        self.evaluator.num_classes = dataset_num_classes(dataset, model)
        self._class_names = getattr(dataset, 'metainfo', {}).get('classes')
        self._index_map = image_index_map(loop.dataloader.dataset)
        self._wrap_inference(model)
        self.hook_time += time.perf_counter() - start

    def _wrap_inference(self, model) -> None:
        """Record the loop's own unshifted forward, so it is not repeated.

        The wrapper lives on the instance only while a loop runs and is
        removed at its end (or at the next start if a loop was interrupted).
        """
        original = model.inference

        def inference(inputs, batch_img_metas):
            logits = original(inputs, batch_img_metas)
            if not self._in_hook:  # not the hook's own shifted forwards
                self._captured = (inputs, logits)
            return logits

        inference.original = original
        model.inference = inference

    def _restore(self) -> None:
        if self._model is not None:
            wrapper = self._model.__dict__.get('inference')
            if wrapper is not None and hasattr(wrapper, 'original'):
                del self._model.inference
        self._model = None
        self._captured = None

    def _find_ignore_index(self, evaluator) -> int:
        if self.ignore_index is not None:
            return self.ignore_index
        for metric in getattr(evaluator, 'metrics', []):
            if hasattr(metric, 'ignore_index'):
                return int(metric.ignore_index)
        return 255

    def _process(self, runner, data_batch, outputs) -> None:
        if not self._active:
            return
        start = time.perf_counter()
        model = self._model
        captured, self._captured = self._captured, None
        if captured is not None and len(captured[0]) == len(outputs):
            inputs, logits = captured
            ref_labels = self.evaluator.logits_to_labels(model, logits, inputs)
        else:
            # The model did not go through `inference` once for this batch
            # (e.g. test-time augmentation): preprocess and infer here.
            inputs = model.data_preprocessor(data_batch, False)['inputs']
            ref_labels = None
        indices = [image_index_of(o.metainfo, self._index_map) for o in outputs]
        self._in_hook = True
        try:
            self._results.extend(
                self.evaluator.process(model, inputs, outputs, indices,
                                       ref_labels))
        finally:
            self._in_hook = False
        self.hook_time += time.perf_counter() - start

    def _finish(self, runner, metrics) -> None:
        active, self._active = self._active, False
        self._restore()
        if not active:
            return
        start = time.perf_counter()
        results = self._results
        if get_world_size() > 1:
            results = [r for part in all_gather_object(results) for r in part]
        # Dedupe (samplers pad the last ranks with repeats) and sort, so the
        # float sums run in one order whatever the process count.
        unique = {r['index']: r for r in results}
        records = [unique[i] for i in sorted(unique)]
        self._results = []
        shift_metrics = compute_shift_metrics(records)
        if metrics is not None:
            metrics.update(shift_metrics)
        runner.logger.info(
            'shift consistency over %d images: %s', len(records),
            ', '.join(f'{k}: {v:.2f}' for k, v in shift_metrics.items()))
        per_class = class_consistency(records, self._class_names)
        if per_class:
            runner.logger.info(
                'shift consistency per class: %s',
                ', '.join(f'{k}: {v:.2f}' for k, v in per_class.items()))
        warning = single_class_warning(records, self.single_class_threshold,
                                       self._class_names)
        if warning:
            runner.logger.warning('ShiftConsistencyHook: %s', warning)
        self.hook_time += time.perf_counter() - start
