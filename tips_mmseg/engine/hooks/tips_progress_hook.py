"""Tell a TIPS segmentor where training stands (for the L_undo switch)."""
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmseg.registry import HOOKS


@HOOKS.register_module()
class TIPSProgressHook(Hook):
    """Call ``model.set_train_progress(runner.iter, runner.max_iters)``
    before every training iteration.

    L_undo switches on at ``tips_cfg.undo_start * max_iters``. Segmentors of
    tips_mmseg also read the runner's message hub, so this hook makes the
    dependence explicit (and works with loops that do not fill the hub).
    Raises at the start of training if the model cannot take the progress.
    """

    priority = 'NORMAL'

    @staticmethod
    def _model(runner):
        model = runner.model
        return model.module if is_model_wrapper(model) else model

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if not hasattr(model, 'set_train_progress'):
            raise TypeError(
                f'TIPSProgressHook needs a segmentor with set_train_progress '
                f'(e.g. TIPSEncoderDecoder); got {type(model).__name__}. Set '
                "model.type='TIPSEncoderDecoder' or remove the hook.")

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._model(runner).set_train_progress(runner.iter, runner.max_iters)
