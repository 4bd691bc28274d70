"""Anneal the Gumbel-softmax temperature of every LPS layer."""
import bisect
import math
from typing import Optional, Sequence, Tuple

from mmengine.dataset import InfiniteSampler
from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ...models.layers import LPS

#: Schedules of LPS's segmentation configs, as (epoch, temperature) knots:
#: the temperature in epoch e is the piecewise-linear interpolation at e,
#: the last value after the last knot (their linear ``MultiStep`` scheduler,
#: stepped at the end of every epoch, starting from the layers' 1.0).
LPS_PRESETS = {
    # tau_segm_multistep.json: 1.0 -> 0.5 (epoch 62) -> 0.05 (82) -> 0.01 (90)
    'lps-seg': ((0, 1.0), (62, 0.5), (82, 0.05), (90, 0.01)),
    # tau_segm_multistep_warmup.json: 1.0 held for epoch 1, then
    # 0.5 (10) -> 0.15 (60) -> 0.05 (82) -> 0.01 (90)
    'lps-seg-warmup': ((0, 1.0), (1, 1.0), (10, 0.5), (60, 0.15), (82, 0.05),
                       (90, 0.01)),
    # tau_segm_multistep_warmup_resnet101.json: 1.0 held for epoch 1, then
    # 0.5 (10) -> 0.3 (80) -> 0.125 (100) -> 0.01 (125)
    'lps-seg-r101': ((0, 1.0), (1, 1.0), (10, 0.5), (80, 0.3), (100, 0.125),
                     (125, 0.01)),
}


def iters_per_epoch(dataloader) -> int:
    """Iterations one process runs per pass over the dataset.

    A sampler that splits the dataset among ranks (mmengine's
    ``DefaultSampler``) has the per-rank length, and so has the
    dataloader. mmengine's ``InfiniteSampler`` - mmseg's default for
    iteration-based runs - reports the whole dataset on every rank while
    each rank takes every ``world_size``-th sample, so its dataloader's
    length is ``world_size`` times one rank's share.

    Args:
        dataloader: A ``torch.utils.data.DataLoader``.

    Returns:
        int: At least 1.
    """
    sampler = getattr(dataloader, 'sampler', None)
    batch_sampler = getattr(dataloader, 'batch_sampler', None)
    if not isinstance(sampler, InfiniteSampler):
        sampler = getattr(batch_sampler, 'sampler', None)
    if not isinstance(sampler, InfiniteSampler):
        return max(1, len(dataloader))
    batch_size = (getattr(dataloader, 'batch_size', None)
                  or getattr(batch_sampler, 'batch_size', 1))
    drop_last = bool(getattr(batch_sampler, 'drop_last', False))
    per_rank = sampler.size / sampler.world_size
    iters = (math.floor(per_rank / batch_size) if drop_last else
             math.ceil(per_rank / batch_size))
    return max(1, iters)


@HOOKS.register_module()
class LPSTemperatureHook(Hook):
    """Set the temperature of every LPS layer from a schedule.

    Either a closed form over the fraction p of training done -
    ``t(p) = start * (end / start) ** p`` ('exp') or
    ``start + (end - start) * p`` ('linear') - or piecewise-linear ``knots``
    ``((step, temperature), ...)`` in epochs or iterations, e.g. one of
    LPS's segmentation schedules by name (``preset``, see
    :data:`LPS_PRESETS`). Epoch knots also work with mmseg's iteration-based
    loops: the epoch is ``iter // iters_per_epoch``, and the temperature
    stays constant within an epoch, as in LPS's release. An epoch is one
    pass over the dataset by all processes together, so
    ``iters_per_epoch`` defaults to the iterations of ONE process per pass
    (:func:`iters_per_epoch`): with mmseg's ``InfiniteSampler``, whose
    length is the whole dataset on every rank, that is
    ``ceil(len(dataset) / (world_size * batch_size))``, not
    ``len(train_dataloader)``.

    Args:
        start (float): Temperature at the start. Defaults to 1.0.
        end (float): Temperature at the end. Defaults to 0.1.
        by_epoch (bool): Update per epoch instead of per iteration (closed
            form only). Defaults to False.
        mode (str): 'exp' or 'linear'. Defaults to 'exp'.
        preset (str, optional): A schedule of LPS's segmentation configs:
            'lps-seg', 'lps-seg-warmup' or 'lps-seg-r101' (epoch knots; sets
            ``knots`` and ``knot_unit='epoch'``). Defaults to None.
        knots (Sequence[tuple], optional): ``((step, temperature), ...)``,
            steps increasing from 0. Defaults to None (closed form).
        knot_unit (str): Unit of the knots' steps, 'epoch' or 'iter'.
            Defaults to 'epoch'.
        iters_per_epoch (int, optional): Iterations per epoch for epoch
            knots, per process. Defaults to None (from the train dataloader,
            see :func:`iters_per_epoch`).
    """

    priority = 'NORMAL'

    def __init__(self, start: float = 1.0, end: float = 0.1,
                 by_epoch: bool = False, mode: str = 'exp',
                 preset: Optional[str] = None,
                 knots: Optional[Sequence[Tuple[float, float]]] = None,
                 knot_unit: str = 'epoch',
                 iters_per_epoch: Optional[int] = None):
        if not (start > 0 and end > 0):
            raise ValueError(f'LPS temperatures must be > 0, got start='
                             f'{start}, end={end}.')
        if mode not in ('exp', 'linear'):
            raise ValueError(f"LPSTemperatureHook mode must be 'exp' or "
                             f"'linear', got {mode!r}.")
        if preset is not None:
            if preset not in LPS_PRESETS:
                raise ValueError(f'Unknown LPSTemperatureHook preset '
                                 f'{preset!r}; choose one of '
                                 f'{sorted(LPS_PRESETS)}.')
            if knots is not None:
                raise ValueError('Give either preset or knots, not both.')
            knots, knot_unit = LPS_PRESETS[preset], 'epoch'
        if knot_unit not in ('epoch', 'iter'):
            raise ValueError(f"knot_unit must be 'epoch' or 'iter', got "
                             f'{knot_unit!r}.')
        if knots is not None:
            knots = tuple((float(s), float(t)) for s, t in knots)
            steps = [s for s, _ in knots]
            if not knots or steps[0] != 0 or any(
                    b <= a for a, b in zip(steps, steps[1:])):
                raise ValueError(f'knots must start at step 0 with steps '
                                 f'increasing, got {knots}.')
            if any(t <= 0 for _, t in knots):
                raise ValueError(f'LPS temperatures must be > 0, got knots '
                                 f'{knots}.')
        if iters_per_epoch is not None and iters_per_epoch < 1:
            raise ValueError(f'iters_per_epoch must be >= 1, got '
                             f'{iters_per_epoch}.')
        self.start, self.end, self.by_epoch, self.mode = (start, end,
                                                          by_epoch, mode)
        self.preset, self.knots, self.knot_unit = preset, knots, knot_unit
        self.iters_per_epoch = iters_per_epoch
        self._per_epoch: Optional[int] = None  # set in before_train

    def temperature(self, progress: float) -> float:
        """Closed-form temperature after ``progress`` (0..1) of training."""
        progress = min(max(progress, 0.), 1.)
        if self.mode == 'exp':
            return self.start * math.exp(
                progress * math.log(self.end / self.start))
        return self.start + (self.end - self.start) * progress

    def knot_temperature(self, step: float) -> float:
        """Temperature of the ``knots`` schedule at ``step`` (its unit)."""
        steps = [s for s, _ in self.knots]
        i = bisect.bisect_right(steps, step) - 1
        if i >= len(steps) - 1:
            return self.knots[-1][1]
        (s0, t0), (s1, t1) = self.knots[i], self.knots[i + 1]
        return t0 + (t1 - t0) * (step - s0) / (s1 - s0)

    @staticmethod
    def _layers(runner):
        model = runner.model
        model = model.module if is_model_wrapper(model) else model
        return [m for m in model.modules() if isinstance(m, LPS)]

    def _set(self, runner, value: float):
        for layer in self._layers(runner):
            layer.temperature = value

    def before_train(self, runner) -> None:
        if not self._layers(runner):
            print_log('LPSTemperatureHook: the model has no LPS layer; the '
                      'hook does nothing.', logger='current', level=30)
        self._per_epoch = None
        if self.knots is not None and self.knot_unit == 'epoch':
            self._per_epoch = self.iters_per_epoch or iters_per_epoch(
                runner.train_dataloader)
            print_log(f'LPSTemperatureHook: an epoch of the knots is '
                      f'{self._per_epoch} iterations per process.',
                      logger='current')

    def before_train_epoch(self, runner) -> None:
        if self.knots is None and self.by_epoch:
            self._set(runner, self.temperature(
                runner.epoch / max(runner.max_epochs, 1)))

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if self.knots is not None:
            step = runner.iter
            if self.knot_unit == 'epoch':
                per_epoch = self._per_epoch or self.iters_per_epoch or \
                    iters_per_epoch(runner.train_dataloader)
                step = runner.iter // per_epoch
            self._set(runner, self.knot_temperature(step))
        elif not self.by_epoch:
            self._set(runner, self.temperature(
                runner.iter / max(runner.max_iters, 1)))
