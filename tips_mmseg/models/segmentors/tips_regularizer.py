"""The TIPS regularizers as loss terms of a segmentor (METHOD.md section 5).

    L = (1 - alpha) * L_task + lambda_fm * L_FM
        + alpha * [iter >= eps * max_iters] * L_undo
"""
import logging
import warnings
from typing import Dict, Optional, Tuple

import torch
from mmengine.logging import MessageHub, print_log

from ...utils.shift_ops import SHIFT_MODES
from ..regularization import claim_regularization, tips_layers

#: Defaults of ``tips_cfg``.
DEFAULT_TIPS_CFG = dict(
    lambda_fm=1.0, alpha=0.35, eps=0.4, undo_shift=None,
    undo_mode='standard')


def _check_tips_cfg(tips_cfg: Optional[dict]) -> dict:
    cfg = dict(DEFAULT_TIPS_CFG)
    unknown = set(tips_cfg or {}) - set(cfg)
    if unknown:
        raise KeyError(f'Unknown tips_cfg keys {sorted(unknown)}; valid keys '
                       f'are {sorted(cfg)}.')
    cfg.update(tips_cfg or {})
    if not 0 <= cfg['alpha'] < 1:
        raise ValueError(f"tips_cfg.alpha must be in [0, 1), got "
                         f"{cfg['alpha']} (the task loss is scaled by "
                         '1 - alpha).')
    if not 0 <= cfg['eps'] <= 1:
        raise ValueError(f"tips_cfg.eps must be in [0, 1] (a fraction of "
                         f"max_iters), got {cfg['eps']}.")
    if cfg['lambda_fm'] < 0:
        raise ValueError(f"tips_cfg.lambda_fm must be >= 0, got "
                         f"{cfg['lambda_fm']}.")
    if cfg['undo_mode'] not in SHIFT_MODES:
        raise ValueError(f"tips_cfg.undo_mode must be one of {SHIFT_MODES}, "
                         f"got {cfg['undo_mode']!r}.")
    return cfg


def _scale(value, factor: float):
    if isinstance(value, (list, tuple)):
        return type(value)(v * factor for v in value)
    return value * factor


class TIPSRegularizerMixin:
    """Adds ``loss_fm`` and ``loss_undo`` to a segmentor's loss dict.

    Mixed in before an mmseg segmentor class. Training progress (for the
    L_undo switch at ``eps * max_iters``) comes from, in this order:

    1. :meth:`set_train_progress`, called by ``TIPSProgressHook`` before each
       training iteration;
    2. the runner's message hub (``iter`` and ``max_iters``, which mmengine's
       RuntimeInfoHook keeps up to date in every Runner);
    3. neither (a model trained outside an mmengine Runner without the
       hook): L_undo is ON, and a warning says so once.

    Losses: every task loss (keys containing ``loss``) is scaled by
    ``1 - alpha``; ``loss_fm = lambda_fm * mean_layers(L_FM)``;
    ``loss_undo = alpha * mean_layers(L_undo)`` once switched on, a constant
    0 before (always logged). Every TIPS parameter gets a gradient from the
    task loss and L_FM in every step, so DDP needs no
    ``find_unused_parameters``. Without TIPS layers the loss dict is left
    unchanged.
    """

    def _init_tips_regularizer(self, tips_cfg: Optional[dict]):
        self.tips_cfg = _check_tips_cfg(tips_cfg)
        self._train_progress: Optional[Tuple[int, int]] = None
        self._warned_no_progress = False
        claim_regularization(self.backbone, type(self).__name__)
        head = getattr(self, 'decode_head', None)
        heads = head if isinstance(head, torch.nn.ModuleList) else [head]
        for h in heads:
            if hasattr(h, 'bind_downsamplers'):
                h.bind_downsamplers(self.backbone)

    def set_train_progress(self, cur_iter: int, max_iters: int):
        """Tell the model the current training iteration (0-based)."""
        self._train_progress = (int(cur_iter), int(max_iters))

    def _progress(self) -> Optional[Tuple[int, int]]:
        if self._train_progress is not None:
            return self._train_progress
        hub = MessageHub.get_current_instance()
        cur_iter, max_iters = hub.get_info('iter'), hub.get_info('max_iters')
        if cur_iter is None or not max_iters:
            return None
        return cur_iter, max_iters

    def undo_active(self) -> bool:
        """Whether L_undo is switched on in the current iteration."""
        eps = self.tips_cfg['eps']
        if eps == 0:
            return True
        progress = self._progress()
        if progress is None:
            if not self._warned_no_progress:
                self._warned_no_progress = True
                msg = (f'{type(self).__name__} does not know the training '
                       f'iteration, so L_undo is on from the start (not from '
                       f'eps={eps} of training). Train with an mmengine '
                       "Runner, add custom_hooks=[dict(type='TIPSProgress"
                       "Hook')] or call model.set_train_progress(iter, "
                       'max_iters).')
                warnings.warn(msg, UserWarning, stacklevel=3)
                print_log(msg, logger='current', level=logging.WARNING)
            return True
        cur_iter, max_iters = progress
        return cur_iter >= eps * max_iters

    def add_tips_losses(self, losses: Dict) -> Dict:
        """Scale the task losses and add ``loss_fm`` and ``loss_undo``."""
        layers = tips_layers(self)
        if not layers:
            return losses
        cfg = self.tips_cfg
        losses = {
            k: _scale(v, 1 - cfg['alpha']) if 'loss' in k else v
            for k, v in losses.items()
        }
        fm = torch.stack([m.failure_mode_loss() for m in layers]).mean()
        losses['loss_fm'] = cfg['lambda_fm'] * fm
        if self.undo_active():
            undo = torch.stack([
                m.undo_loss(cfg['undo_shift'], cfg['undo_mode'])
                for m in layers
            ]).mean()
            losses['loss_undo'] = cfg['alpha'] * undo
        else:
            losses['loss_undo'] = fm.new_zeros(())
        for m in layers:
            m.clear_cache()  # drop the graph-holding tensors early
        return losses

    def loss(self, inputs, data_samples) -> Dict:
        return self.add_tips_losses(super().loss(inputs, data_samples))
