"""The TIPS regularizers as loss terms of a segmentor.

    L = (1 - alpha) * L_task + lambda_fm * L_FM
        + alpha * [iter >= undo_start * max_iters] * L_undo

How L_FM and L_undo are gathered over the TIPS layers, and how L_undo
shifts, is set by ``tips_cfg`` (see :class:`TIPSRegularizerMixin`); the
defaults train as the official TIPS release does where its behaviour is
deliberate (docs/fidelity.md has the side-by-side table).
"""
import logging
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.logging import MessageHub, print_log

from ...utils.shift_ops import SHIFT_MODES
from ..layers import TIPS
from ..regularization import claim_regularization, tips_layers, tips_stages

#: Where the L_undo shift range comes from: the network input (the release)
#: or each layer's own input.
UNDO_RANGES = ('input', 'layer')
#: L_FM over the layers: mean over all their channels together (the
#: release) or the mean of per-layer means.
FM_REDUCTIONS = ('channels', 'layers')
#: L_undo over the layers: mean over stages, main branch and shortcut of a
#: block pooled into one MSE (the release), or the mean over layers.
UNDO_REDUCTIONS = ('stages', 'layers')

#: Defaults of ``tips_cfg``.
DEFAULT_TIPS_CFG = dict(
    lambda_fm=1.0,
    alpha=0.35,
    undo_start=0.21,
    undo_mode='circular',
    undo_range='input',
    undo_shift=None,
    undo_detach=True,
    fm_reduction='channels',
    undo_reduction='stages')


#: Old ``tips_cfg`` keys still accepted, and their new names.
DEPRECATED_TIPS_KEYS = dict(eps='undo_start')


def _rename_deprecated(tips_cfg: dict) -> dict:
    """Move old keys to their new names, with a warning; both given is an
    error (which one was meant is unknowable)."""
    cfg = dict(tips_cfg)
    for old, new in DEPRECATED_TIPS_KEYS.items():
        if old not in cfg:
            continue
        if new in cfg:
            raise ValueError(
                f'tips_cfg has both {old!r} and {new!r}; {old!r} is the old '
                f'name of {new!r}: keep only {new}={cfg[new]!r}.')
        msg = (f'tips_cfg.{old} is deprecated: rename it to {new} (the '
               f'same value, a fraction of training).')
        warnings.warn(msg, DeprecationWarning, stacklevel=4)
        print_log(msg, logger='current', level=logging.WARNING)
        cfg[new] = cfg.pop(old)
    return cfg


def _check_choice(cfg: dict, key: str, choices: Sequence[str]):
    if cfg[key] not in choices:
        raise ValueError(f'tips_cfg.{key} must be one of {choices}, got '
                         f'{cfg[key]!r}.')


def _check_tips_cfg(tips_cfg: Optional[dict]) -> dict:
    cfg = dict(DEFAULT_TIPS_CFG)
    tips_cfg = _rename_deprecated(tips_cfg or {})
    unknown = set(tips_cfg) - set(cfg)
    if unknown:
        raise KeyError(f'Unknown tips_cfg keys {sorted(unknown)}; valid keys '
                       f'are {sorted(cfg)}.')
    cfg.update(tips_cfg)
    if not 0 <= cfg['alpha'] < 1:
        raise ValueError(f"tips_cfg.alpha must be in [0, 1), got "
                         f"{cfg['alpha']} (the task loss is scaled by "
                         '1 - alpha).')
    if not 0 <= cfg['undo_start'] <= 1:
        raise ValueError(f"tips_cfg.undo_start must be in [0, 1] (a fraction "
                         f"of max_iters), got {cfg['undo_start']}.")
    if cfg['lambda_fm'] < 0:
        raise ValueError(f"tips_cfg.lambda_fm must be >= 0, got "
                         f"{cfg['lambda_fm']}.")
    _check_choice(cfg, 'undo_mode', SHIFT_MODES)
    _check_choice(cfg, 'undo_range', UNDO_RANGES)
    _check_choice(cfg, 'fm_reduction', FM_REDUCTIONS)
    _check_choice(cfg, 'undo_reduction', UNDO_REDUCTIONS)
    if not isinstance(cfg['undo_detach'], bool):
        raise ValueError(f"tips_cfg.undo_detach must be True or False, got "
                         f"{cfg['undo_detach']!r}.")
    shift = cfg['undo_shift']
    if shift is not None:
        pair = (shift, shift) if isinstance(shift, int) else shift
        if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(
                isinstance(m, int) and not isinstance(m, bool) and m >= 0
                for m in pair)):
            raise ValueError(
                f'tips_cfg.undo_shift must be None, an int >= 0 or a pair '
                f'(m_h, m_w) of them, got {shift!r}.')
        cfg['undo_shift'] = tuple(pair)
    return cfg


def _loads_checkpoint(module: torch.nn.Module) -> bool:
    """Whether ``module``'s init_cfg loads a checkpoint."""
    cfgs = getattr(module, 'init_cfg', None) or []
    cfgs = [cfgs] if isinstance(cfgs, dict) else cfgs
    return any(isinstance(c, dict) and c.get('type') == 'Pretrained'
               for c in cfgs)


def _scale(value, factor: float):
    if isinstance(value, (list, tuple)):
        return type(value)(v * factor for v in value)
    return value * factor


def _channel_weighted_mean(layers: List[TIPS],
                           losses: List[torch.Tensor]) -> torch.Tensor:
    """Mean of per-layer means, each weighted by its number of channels:
    the mean over the channels of all layers concatenated (same N, H, W)."""
    weights = losses[0].new_tensor([float(m.channels) for m in layers])
    return (torch.stack(losses) * weights).sum() / weights.sum()


def failure_mode_loss(layers: List[TIPS],
                      reduction: str = 'channels') -> torch.Tensor:
    """L_FM of several TIPS layers after a training forward.

    Args:
        layers (list[TIPS]): The layers.
        reduction (str): ``'channels'``: mean of ``1 - ||tau[n, c]||_2``
            over samples and the channels of all layers together (the
            release concatenates every layer's tau along channels, so a
            layer with C channels weighs C); ``'layers'``: mean over layers
            of each layer's mean (every layer weighs the same). Defaults to
            ``'channels'``.
    """
    losses = [m.failure_mode_loss() for m in layers]
    if reduction == 'layers':
        return torch.stack(losses).mean()
    return _channel_weighted_mean(layers, losses)


def undo_loss(stages: List[List[TIPS]],
              reduction: str = 'stages',
              **undo_kwargs) -> torch.Tensor:
    """L_undo of TIPS layers grouped by :func:`tips_stages`.

    Args:
        stages (list[list[TIPS]]): The layers, grouped by downsampling step.
        reduction (str): ``'stages'``: per stage, one MSE over its layers'
            psi and targets concatenated along channels (the release's main
            branch + shortcut), then the mean over stages (the release's
            weights ``1 / num_down``); ``'layers'``: the mean over layers of
            each layer's MSE. Defaults to ``'stages'``.
        **undo_kwargs: Passed to :meth:`TIPS.undo_loss` (``max_shift``,
            ``mode``, ``detach``, ``generator``).
    """
    if reduction == 'layers':
        return torch.stack([m.undo_loss(**undo_kwargs) for s in stages
                            for m in s]).mean()
    per_stage = []
    for stage in stages:
        sizes = {tuple(m.last_input_size) for m in stage}
        if len(sizes) > 1:
            raise ValueError(
                f"tips_cfg.undo_reduction='stages' pools the main branch "
                f'and shortcut of a block into one MSE (as the release '
                f'concatenates them), which needs inputs of one size; this '
                f'block has TIPS inputs of sizes {sorted(sizes)}. Use '
                "undo_reduction='layers'.")
        per_stage.append(_channel_weighted_mean(
            stage, [m.undo_loss(**undo_kwargs) for m in stage]))
    return torch.stack(per_stage).mean()


class TIPSRegularizerMixin:
    """Adds ``loss_fm`` and ``loss_undo`` to a segmentor's loss dict.

    Mixed in before an mmseg segmentor class. ``tips_cfg`` keys (defaults in
    ``DEFAULT_TIPS_CFG``):

    - ``lambda_fm`` (1.0), ``alpha`` (0.35): the weights above (the
      release's).
    - ``undo_start`` (0.21): L_undo is on from ``undo_start * max_iters``
      (a fraction of training); the release's README example wakes it at
      epoch 100 of 480. ``eps``, its old name, is still accepted with a
      deprecation warning (giving both is an error).
    - ``undo_mode`` ('circular'): the shift T of L_undo rolls the layer's
      input (``torch.roll``, as the release trains); 'standard' fills with
      zeros.
    - ``undo_range`` ('input'): the shift is drawn from ``[-m_h, m_h] x
      [-m_w, m_w]`` with ``(m_h, m_w) = (H // 4, W // 4)`` of the NETWORK
      input, the same m for every layer in that layer's own pixels (the
      release; on small deep maps the roll wraps around); 'layer': H // 4,
      W // 4 of each layer's own input.
    - ``undo_shift`` (None): a fixed m (int or ``(m_h, m_w)``) for every
      layer, in its own pixels, instead of ``undo_range``.
    - ``undo_detach`` (True): no gradient through the target T(X) (the
      release's stated intent); False: the target's gradient reaches the
      layers before TIPS (the release's code as it runs).
    - ``fm_reduction`` ('channels'): L_FM averaged over the channels of all
      TIPS layers together (the release: a wide layer counts more);
      'layers': every layer counts the same.
    - ``undo_reduction`` ('stages'): L_undo per downsampling step, main
      branch and shortcut of a block pooled into one MSE, steps averaged
      (the release's ``1 / num_down``); 'layers': mean over layers.

    The reductions follow the release by default because its training
    script builds them on purpose (explicit concatenation, explicit
    ``1 / num_down`` weights); the per-layer variants are there to compare.

    Training progress (for the L_undo switch at ``undo_start * max_iters``)
    comes from, in this order:

    1. :meth:`set_train_progress`, called by ``TIPSProgressHook`` before each
       training iteration;
    2. the runner's message hub (``iter`` and ``max_iters``, which mmengine's
       RuntimeInfoHook keeps up to date in every Runner);
    3. neither (a model trained outside an mmengine Runner without the
       hook): L_undo is ON, and a warning says so once.

    Losses: every task loss (keys containing ``loss``) is scaled by
    ``1 - alpha``; ``loss_fm = lambda_fm * L_FM``; ``loss_undo = alpha *
    L_undo`` once switched on, a constant 0 before (always logged). Every
    TIPS parameter gets a gradient from the task loss and L_FM in every
    step, so DDP needs no ``find_unused_parameters``. Without TIPS layers
    the loss dict is left unchanged; TIPS layers in eval mode (a frozen
    stage of the backbone, ``frozen_stages >= 0``) are left out of both
    terms, as they are not trained.
    """

    def _init_tips_regularizer(self, tips_cfg: Optional[dict]):
        self.tips_cfg = _check_tips_cfg(tips_cfg)
        self._train_progress: Optional[Tuple[int, int]] = None
        self._warned_no_progress = False
        self._tips_input_size: Optional[Tuple[int, int]] = None
        claim_regularization(self.backbone, type(self).__name__)
        head = getattr(self, 'decode_head', None)
        heads = head if isinstance(head, torch.nn.ModuleList) else [head]
        for h in heads:
            if hasattr(h, 'bind_downsamplers'):
                h.bind_downsamplers(self.backbone)

    def init_weights(self):
        """mmengine's init, then the release's init for TIPS layers that a
        backbone's own ``init_weights`` overwrote.

        :meth:`TIPS.init_weights` runs whenever its parents call their
        children's (mmseg's ResNets, any ``init_cfg``). Some backbones
        instead set every conv themselves and call no child (MiT without
        ``init_cfg``), which would leave TIPS with their conv init. TIPS
        layers under a module that loads a checkpoint (``Pretrained``
        init_cfg) are left as loaded.
        """
        super().init_weights()
        loaded = [m for m in self.modules() if _loads_checkpoint(m)]
        for layer in tips_layers(self):
            if layer.init_cfg or any(
                    any(sub is layer for sub in m.modules()) for m in loaded):
                continue
            layer.reset_parameters()

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
        start = self.tips_cfg['undo_start']
        if start == 0:
            return True
        progress = self._progress()
        if progress is None:
            if not self._warned_no_progress:
                self._warned_no_progress = True
                msg = (f'{type(self).__name__} does not know the training '
                       f'iteration, so L_undo is on from the start (not from '
                       f'undo_start={start} of training). Train with an '
                       'mmengine Runner, add custom_hooks=[dict(type='
                       "'TIPSProgressHook')] or call "
                       'model.set_train_progress(iter, max_iters).')
                warnings.warn(msg, UserWarning, stacklevel=3)
                print_log(msg, logger='current', level=logging.WARNING)
            return True
        cur_iter, max_iters = progress
        return cur_iter >= start * max_iters

    def undo_max_shift(self, input_size: Optional[Sequence[int]] = None
                       ) -> Optional[Tuple[int, int]]:
        """``(m_h, m_w)`` for every layer's L_undo, None = per layer.

        Args:
            input_size (Sequence[int], optional): (H, W) of the network
                input. Defaults to None (that of the last
                :meth:`extract_feat`).
        """
        cfg = self.tips_cfg
        if cfg['undo_shift'] is not None:
            return cfg['undo_shift']
        if cfg['undo_range'] == 'layer':
            return None
        size = input_size if input_size is not None else \
            self._tips_input_size
        if size is None:
            raise RuntimeError(
                f"tips_cfg.undo_range='input' needs the network input size; "
                f'{type(self).__name__} has not seen an input yet. Call '
                'model.loss(inputs, data_samples), or pass input_size to '
                'add_tips_losses().')
        return int(size[-2]) // 4, int(size[-1]) // 4

    def extract_feat(self, inputs: torch.Tensor):
        # The L_undo range of the release is relative to the network input.
        self._tips_input_size = tuple(inputs.shape[-2:])
        return super().extract_feat(inputs)

    def add_tips_losses(self,
                        losses: Dict,
                        input_size: Optional[Sequence[int]] = None) -> Dict:
        """Scale the task losses and add ``loss_fm`` and ``loss_undo``.

        Args:
            losses (dict): The segmentor's losses of the current forward.
            input_size (Sequence[int], optional): (H, W) of the network
                input. Defaults to None (that of the last forward).
        """
        # A frozen stage's TIPS layers (eval mode) are not trained: no
        # regularizer for them (they cached nothing in this forward).
        layers = tips_layers(self, training_only=True)
        if not layers:
            return losses
        cfg = self.tips_cfg
        losses = {
            k: _scale(v, 1 - cfg['alpha']) if 'loss' in k else v
            for k, v in losses.items()
        }
        fm = failure_mode_loss(layers, cfg['fm_reduction'])
        losses['loss_fm'] = cfg['lambda_fm'] * fm
        if self.undo_active():
            undo = undo_loss(
                tips_stages(self, training_only=True), cfg['undo_reduction'],
                max_shift=self.undo_max_shift(input_size),
                mode=cfg['undo_mode'], detach=cfg['undo_detach'])
            losses['loss_undo'] = cfg['alpha'] * undo
        else:
            losses['loss_undo'] = fm.new_zeros(())
        for m in layers:
            m.clear_cache()  # drop the graph-holding tensors early
        return losses

    def loss(self, inputs, data_samples) -> Dict:
        if self.undo_active():
            # Each layer computes L_undo in its forward, while psi(X) is at
            # hand, instead of keeping or recomputing it at the end.
            cfg = self.tips_cfg
            max_shift = self.undo_max_shift(inputs.shape[-2:])
            for layer in tips_layers(self, training_only=True):
                layer.request_undo(max_shift, cfg['undo_mode'],
                                   cfg['undo_detach'])
        return self.add_tips_losses(
            super().loss(inputs, data_samples), inputs.shape[-2:])
