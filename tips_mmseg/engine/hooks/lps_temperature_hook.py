"""Anneal the Gumbel-softmax temperature of every LPS layer."""
import math

from mmengine.hooks import Hook
from mmengine.logging import print_log
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS

from ...models.layers import LPS


@HOOKS.register_module()
class LPSTemperatureHook(Hook):
    """Set the temperature of every LPS layer from a schedule.

    ``t(p) = start * (end / start) ** p`` ('exp') or
    ``start + (end - start) * p`` ('linear'), with p the fraction of training
    done (iterations, or epochs with ``by_epoch=True``).

    Args:
        start (float): Temperature at the start. Defaults to 1.0.
        end (float): Temperature at the end. Defaults to 0.1.
        by_epoch (bool): Update per epoch instead of per iteration.
            Defaults to False.
        mode (str): 'exp' or 'linear'. Defaults to 'exp'.
    """

    priority = 'NORMAL'

    def __init__(self, start: float = 1.0, end: float = 0.1,
                 by_epoch: bool = False, mode: str = 'exp'):
        if not (start > 0 and end > 0):
            raise ValueError(f'LPS temperatures must be > 0, got start='
                             f'{start}, end={end}.')
        if mode not in ('exp', 'linear'):
            raise ValueError(f"LPSTemperatureHook mode must be 'exp' or "
                             f"'linear', got {mode!r}.")
        self.start, self.end, self.by_epoch, self.mode = (start, end,
                                                          by_epoch, mode)

    def temperature(self, progress: float) -> float:
        """Temperature after ``progress`` (0..1) of training."""
        progress = min(max(progress, 0.), 1.)
        if self.mode == 'exp':
            return self.start * math.exp(
                progress * math.log(self.end / self.start))
        return self.start + (self.end - self.start) * progress

    @staticmethod
    def _layers(runner):
        model = runner.model
        model = model.module if is_model_wrapper(model) else model
        return [m for m in model.modules() if isinstance(m, LPS)]

    def _update(self, runner, done: int, total: int):
        value = self.temperature(done / max(total, 1))
        for layer in self._layers(runner):
            layer.temperature = value

    def before_train(self, runner) -> None:
        if not self._layers(runner):
            print_log('LPSTemperatureHook: the model has no LPS layer; the '
                      'hook does nothing.', logger='current', level=30)

    def before_train_epoch(self, runner) -> None:
        if self.by_epoch:
            self._update(runner, runner.epoch, runner.max_epochs)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        if not self.by_epoch:
            self._update(runner, runner.iter, runner.max_iters)
