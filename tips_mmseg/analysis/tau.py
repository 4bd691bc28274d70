"""How far TIPS's mixing weights tau are from uniform, on real images."""
from typing import Dict, Iterable, List

import torch
import torch.nn as nn

from tips_mmseg.models.layers import TIPS


@torch.no_grad()
def tau_statistics(model: nn.Module,
                   dataloader: Iterable[dict],
                   num_images: int = 8) -> List[dict]:
    """How far each TIPS layer's mixing weights tau are from uniform.

    Runs the first ``num_images`` images of ``dataloader`` (through the
    model's data preprocessor and ``_forward``, in eval mode) and reads every
    TIPS layer's ``last_tau`` (N, C, 4). Per layer: ``max_tau``, the mean
    over images and channels of the largest weight (0.25 uniform, 1
    one-hot); ``norm_tau``, the mean of ``||tau||_2`` (0.5 uniform, 1
    one-hot; L_FM = 1 - norm_tau); ``one_hot_fraction``, the share of
    (image, channel) pairs whose largest weight exceeds 0.9.

    Args:
        model (nn.Module): An mmseg segmentor (``data_preprocessor`` and
            ``_forward``).
        dataloader (Iterable[dict]): Yields mmseg data batches.
        num_images (int): Images to run. Defaults to 8.

    Returns:
        list[dict]: One dict per TIPS layer (``name``, ``channels`` and the
        statistics above); empty for a model without TIPS.
    """
    layers = [(name, m) for name, m in model.named_modules()
              if isinstance(m, TIPS)]
    if not layers:
        return []
    model.eval()
    taus: Dict[str, List[torch.Tensor]] = {name: [] for name, _ in layers}
    seen = 0
    for batch in dataloader:
        if seen >= num_images:
            break
        data = model.data_preprocessor(batch, False)
        keep = min(len(data['data_samples']), num_images - seen)
        model._forward(data['inputs'][:keep])
        for name, layer in layers:
            taus[name].append(layer.last_tau.detach().float().cpu())
        seen += keep
    stats = []
    for name, _ in layers:
        channels = int(taus[name][0].shape[1])
        tau = torch.cat(taus[name]).flatten(0, 1)  # (N * C, 4)
        top = tau.max(dim=-1).values
        stats.append(
            dict(name=name,
                 channels=channels,
                 max_tau=float(top.mean()),
                 norm_tau=float(tau.norm(dim=-1).mean()),
                 one_hot_fraction=float((top > 0.9).float().mean())))
    return stats
