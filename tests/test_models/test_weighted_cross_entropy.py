"""WeightedCrossEntropyLoss against a loop over pixels, with ignored ones."""
import math

import pytest
import torch

from mmseg.registry import MODELS
from tips_mmseg.models.losses import WeightedCrossEntropyLoss


def _by_hand(logits, label, class_weight, ignore_index=255):
    num, den = 0.0, 0.0
    n, c, h, w = logits.shape
    for b in range(n):
        for i in range(h):
            for j in range(w):
                y = int(label[b, i, j])
                if y == ignore_index:
                    continue
                scores = [float(logits[b, k, i, j]) for k in range(c)]
                log_z = math.log(sum(math.exp(s) for s in scores))
                num += class_weight[y] * (log_z - scores[y])
                den += class_weight[y]
    return num / den


def test_matches_the_weighted_mean_by_hand_with_ignored_pixels():
    torch.manual_seed(0)
    logits = torch.randn(2, 3, 4, 5, requires_grad=True)
    label = torch.randint(0, 3, (2, 4, 5))
    label[0, :2] = 255  # ignored, e.g. padding
    loss = MODELS.build(dict(type='WeightedCrossEntropyLoss',
                             class_weight=[0.5, 1.0, 2.0], loss_weight=0.4))
    value = loss(logits, label, ignore_index=255)
    assert value.item() == pytest.approx(
        0.4 * _by_hand(logits, label, [0.5, 1.0, 2.0]), rel=1e-5)
    value.backward()
    assert logits.grad[0, :, :2].abs().max() == 0  # ignored: no gradient
    assert loss.loss_name == 'loss_ce'


def test_all_ignored_is_zero_and_bad_weights_are_refused():
    logits = torch.randn(1, 2, 2, 2, requires_grad=True)
    loss = WeightedCrossEntropyLoss([1.0, 1.0])
    value = loss(logits, torch.full((1, 2, 2), 255))
    assert value.item() == 0.0
    value.backward()
    with pytest.raises(ValueError, match='2 class weights but the head '
                       'predicts 3'):
        loss(torch.randn(1, 3, 2, 2), torch.zeros(1, 2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match='non-negative'):
        WeightedCrossEntropyLoss([1.0, -1.0])
