"""A convenience hook: ShiftTTAModel + ShiftConsistencyMetric in one line."""
from typing import Optional, Sequence

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS, METRICS, MODELS

from tips_mmseg.evaluation.shift_consistency_metric import \
    ShiftConsistencyMetric
from tips_mmseg.models.segmentors.shift_tta import ShiftTTAModel
from tips_mmseg.utils.shift_ops import DEFAULT_MODES


@HOOKS.register_module()
class ShiftConsistencyHook(Hook):
    """Adds shift-consistency metrics (percent) beside mIoU, in one line::

        custom_hooks = [dict(type='ShiftConsistencyHook', max_shift=4)]

    It does what two config entries do explicitly (docs/evaluation.md):
    for the duration of every val / test loop it wraps the segmentor in
    :class:`~tips_mmseg.models.ShiftTTAModel` (as mmengine's
    ``PrepareTTAHook`` wraps a TTA model) and appends a
    :class:`~tips_mmseg.evaluation.ShiftConsistencyMetric` to the loop's
    evaluator; at the end of the loop both are removed again, so training
    and checkpoints see the plain model. If the config already wraps the
    model or lists the metric, that one is used. The metrics come out of
    the evaluator with IoUMetric's, so they reach the log, every
    visualization backend and ``save_best`` whatever the hook order.

    The shifts are checked against the first val image before training
    starts (and the first test image before a test), so a ``max_shift``
    too large for the input fails at once with the fix in the message.

    Args:
        shifts, num_shifts, max_shift, seed, modes, subpixel_shifts,
            shift_batch_size: As :class:`ShiftTTAModel` (defaults: None, 5,
            32, 0, ``('standard', 'circular')``, None, None).
        boundary_width, single_class_threshold: As
            :class:`ShiftConsistencyMetric` (defaults: 3, 0.99).
        ignore_index (int, optional): Ground-truth label not scored; None
            takes the evaluator's IoUMetric's, else 255. Defaults to None.
        interval (int): Evaluate shift consistency every ``interval``
            validation runs (1: every run). Test runs always do.
            Defaults to 1.
        val (bool): Run in val loops. Defaults to True.
        test (bool): Run in test loops. Defaults to True.
    """

    priority = 'NORMAL'  # nothing depends on the order

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
        self.model_cfg = dict(type='ShiftTTAModel',
                              shifts=shifts,
                              num_shifts=num_shifts,
                              max_shift=max_shift,
                              seed=seed,
                              modes=modes,
                              subpixel_shifts=subpixel_shifts,
                              shift_batch_size=shift_batch_size)
        self.metric_cfg = dict(type='ShiftConsistencyMetric',
                               boundary_width=boundary_width,
                               single_class_threshold=single_class_threshold)
        # Build both once now: bad settings fail when the config is read.
        self.metric = METRICS.build(self.metric_cfg)
        self.ignore_index = ignore_index
        self.interval = interval
        self.enabled = dict(val=val, test=test)
        self._val_runs = 0
        self._restore = None
        #: The ShiftTTAModel of the last loop the hook wrapped (its
        #: ``predictor`` keeps that loop's timers).
        self.wrapper = None

    def _wrap(self, module) -> ShiftTTAModel:
        return MODELS.build(dict(self.model_cfg, module=module))

    # --- loop entry / exit -------------------------------------------------
    def before_train(self, runner) -> None:
        """Fail before the first iteration if the shifts do not fit the
        val images (hours of training would otherwise end in an error)."""
        loop = getattr(runner, '_val_loop', None)
        if self.enabled['val'] and loop is not None and not isinstance(
                loop, dict):
            self.check_input_size(self._segmentor(runner), loop, 'val',
                                  'training starts')

    def before_val(self, runner) -> None:
        self._val_runs += 1
        if self.enabled['val'] and self._val_runs % self.interval == 0:
            self._insert(runner, runner.val_loop, 'val')

    def before_test(self, runner) -> None:
        if self.enabled['test']:
            self._insert(runner, runner.test_loop, 'test')

    def after_val(self, runner) -> None:
        self._remove(runner)

    def after_test(self, runner) -> None:
        self._remove(runner)

    # --- implementation ----------------------------------------------------
    @staticmethod
    def _segmentor(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def check_input_size(self, segmentor, loop, split: str, when: str) -> None:
        """Check the shifts against the first image of the loop's dataset
        as the network sees it (after its test pipeline).

        Raises:
            ValueError: Naming the shift, the image size and the fix.
        """
        wrapper = segmentor if isinstance(segmentor, ShiftTTAModel) else \
            self._wrap(segmentor)
        try:
            size = tuple(loop.dataloader.dataset[0]['inputs'].shape[-2:])
        except Exception:  # noqa: BLE001 - no cheap way to know: check later
            return
        try:
            wrapper.check_size(size)
        except ValueError as error:
            raise ValueError(
                f'ShiftConsistencyHook does not fit the {split} images '
                f'(checked on the first, {size[0]}x{size[1]} px after the '
                f'test pipeline, before {when}): {error} Change max_shift / '
                'shifts / subpixel_shifts of the hook in custom_hooks.'
            ) from None

    def _insert(self, runner, loop, split: str) -> None:
        self._remove(runner)  # a loop interrupted before its end
        model = runner.model
        segmentor = self._segmentor(runner)
        self.check_input_size(segmentor, loop, split, 'the first forward')
        restore = dict()
        if not isinstance(segmentor, ShiftTTAModel):
            # Evaluation only: the DDP wrapper (if any) is not needed for
            # val/test steps, and is put back at the end of the loop.
            wrapper = self._wrap(segmentor)
            runner.model = wrapper
            self.wrapper = wrapper
            restore['model'] = model
        evaluator = loop.evaluator
        if not any(
                isinstance(m, ShiftConsistencyMetric)
                for m in evaluator.metrics):
            self.metric.ignore_index = self._find_ignore_index(evaluator)
            self.metric.dataset_meta = evaluator.dataset_meta
            evaluator.metrics.append(self.metric)
            restore['evaluator'] = evaluator
        self._restore = restore

    def _remove(self, runner) -> None:
        restore, self._restore = self._restore, None
        if not restore:
            return
        if 'model' in restore:
            runner.model = restore['model']
        if 'evaluator' in restore:
            metrics = restore['evaluator'].metrics
            if self.metric in metrics:
                metrics.remove(self.metric)

    def _find_ignore_index(self, evaluator) -> int:
        if self.ignore_index is not None:
            return int(self.ignore_index)
        for metric in evaluator.metrics:
            if hasattr(metric, 'ignore_index') and not isinstance(
                    metric, ShiftConsistencyMetric):
                return int(metric.ignore_index)
        return 255
