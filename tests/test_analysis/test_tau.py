"""tau_statistics: how far TIPS's mixing weights are from uniform."""
import pytest
import torch
import torch.nn as nn
from mmseg.structures import SegDataSample

from tips_mmseg.analysis import tau_statistics
from tips_mmseg.models.layers import TIPS


class _Net(nn.Module):
    """A stand-in segmentor: one TIPS layer, a data preprocessor."""

    def __init__(self):
        super().__init__()
        self.down = TIPS(3)
        nn.init.zeros_(self.down.logit_scale.weight)  # tau uniform

    def data_preprocessor(self, batch, training):
        return dict(inputs=torch.stack(batch['inputs']).float(),
                    data_samples=batch['data_samples'])

    def _forward(self, x):
        return self.down(x)


def test_tau_statistics_of_a_uniform_and_a_one_hot_mix():
    net = _Net()
    batch = dict(inputs=[torch.rand(3, 8, 8) for _ in range(2)],
                 data_samples=[SegDataSample() for _ in range(2)])
    stats = tau_statistics(net, [batch, batch], num_images=3)
    assert [s['name'] for s in stats] == ['down'] and stats[0]['channels'] == 3
    assert stats[0]['max_tau'] == pytest.approx(0.25)
    assert stats[0]['norm_tau'] == pytest.approx(0.5)
    assert stats[0]['one_hot_fraction'] == 0.
    # A huge scale on a positive input: psi > 0 differs by quadrant, so the
    # softmax picks one component per channel.
    nn.init.constant_(net.down.logit_scale.weight, 1e4)
    nn.init.constant_(net.down.psi_conv.weight, 1.)
    ramp = torch.arange(64.).reshape(1, 8, 8).expand(3, 8, 8)
    batch = dict(inputs=[ramp], data_samples=[SegDataSample()])
    stats = tau_statistics(net, [batch], num_images=1)
    assert stats[0]['max_tau'] == pytest.approx(1.0)
    assert stats[0]['one_hot_fraction'] == 1.0
    assert tau_statistics(nn.Conv2d(1, 1, 1), [batch]) == []
