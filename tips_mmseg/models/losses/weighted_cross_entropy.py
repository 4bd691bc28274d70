"""Class-weighted cross-entropy that accepts ignored pixels."""
from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmseg.registry import MODELS


@MODELS.register_module()
class WeightedCrossEntropyLoss(nn.Module):
    """Cross-entropy with a weight per class, averaged like PyTorch's:
    ``sum_p w[y_p] * ce_p / sum_p w[y_p]`` over the pixels that are not
    ``ignore_index``.

    mmseg 1.2.2's ``CrossEntropyLoss(class_weight=...)`` indexes the class
    weights with the raw labels to compute its average, so any ignored pixel
    (255, e.g. padding) raises an IndexError; this loss takes the same place
    in a decode head's ``loss_decode`` without that failure.

    Args:
        class_weight (Sequence[float]): One weight per class.
        loss_weight (float): Factor on the loss. Defaults to 1.0.
        loss_name (str): Key in the loss dict. Defaults to 'loss_ce'.
    """

    def __init__(self,
                 class_weight: Sequence[float],
                 loss_weight: float = 1.0,
                 loss_name: str = 'loss_ce'):
        super().__init__()
        if not class_weight or min(class_weight) < 0:
            raise ValueError('class_weight must list one non-negative weight '
                             f'per class, got {class_weight!r}.')
        self.class_weight = [float(w) for w in class_weight]
        self.loss_weight = loss_weight
        self._loss_name = loss_name

    def forward(self,
                cls_score: torch.Tensor,
                label: torch.Tensor,
                weight: Optional[torch.Tensor] = None,
                ignore_index: int = 255,
                **kwargs) -> torch.Tensor:
        if cls_score.shape[1] != len(self.class_weight):
            raise ValueError(
                f'WeightedCrossEntropyLoss has {len(self.class_weight)} class '
                f'weights but the head predicts {cls_score.shape[1]} classes.')
        class_weight = cls_score.new_tensor(self.class_weight)
        per_pixel = F.cross_entropy(cls_score, label, weight=class_weight,
                                    ignore_index=ignore_index,
                                    reduction='none')
        valid = label != ignore_index
        pixel_weight = class_weight[label.clamp(0, len(class_weight) - 1)]
        pixel_weight = pixel_weight * valid
        if weight is not None:
            per_pixel = per_pixel * weight
            pixel_weight = pixel_weight * weight
        total = pixel_weight.sum()
        # No valid pixel: 0, still attached to the graph.
        loss = per_pixel.sum() / total.clamp(min=1e-12)
        return self.loss_weight * loss

    @property
    def loss_name(self) -> str:
        return self._loss_name
