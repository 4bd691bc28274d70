"""The demo's numbers, figures and report (tools/_reports) from hand-made
results."""
import os.path as osp
import re
import sys

import numpy as np
import pytest
import torch
from mmengine.structures import PixelData
from mmseg.structures import SegDataSample

from tests.helpers import REPO_ROOT, parity_heatmap

TOOLS_DIR = osp.join(REPO_ROOT, 'tools')
if TOOLS_DIR not in sys.path:
    sys.path.append(TOOLS_DIR)  # tools/_reports is not installed

from _reports.demo_figures import (draw_consistency_maps,  # noqa: E402
                                   draw_loss_curves, draw_metric_bars)
from _reports.demo_numbers import class_iou, loss_terms  # noqa: E402
from _reports.demo_text import write_report  # noqa: E402

PNG_MAGIC = b'\x89PNG'


def _result(variant, miou, massc, seed=0, extra=None, tau=None):
    metrics = dict(mIoU=miou, aAcc=90., mASSC=massc, mASSC_circular=massc,
                   mASSC_worst=massc - 5, shift_fidelity=80.,
                   shift_mIoU=miou - 1)
    metrics.update(extra or {})
    terms = dict(task=[2.0, 1.5, 1.2])
    if tau:
        terms.update(loss_fm=[0.5, 0.5, 0.49], loss_undo=[0., 0.1, 0.1])
    return dict(
        variant=variant, seed=seed, metrics=metrics,
        class_iou=dict(background=95., disc=80., thin_bar=60., ring=70.,
                       checker=85.),
        msb=dict(msb_pixel=0.3, msb_soft=0.55, msb_phase=0.25),
        tau=tau or [],
        heatmap=parity_heatmap(massc, massc - 2),
        losses=[2.0, 1.5, 1.2], loss_terms=terms, train_s=12.3, iters=3)


SETTINGS = dict(data_root='data/toy', iters=3, seeds=[0], max_shift=1,
                num_train=8, num_val=2, map_images=2, msb_images=2)


def _figures(results, tmp_path):
    return dict(
        metrics=draw_metric_bars(results, str(tmp_path / 'metrics.png')),
        maps=draw_consistency_maps(results, str(tmp_path / 'maps.png')),
        losses=draw_loss_curves(results, str(tmp_path / 'losses.png')))


def test_report_table_figures_and_links(tmp_path):
    tau = [dict(name='backbone.stem_down', channels=32, max_tau=0.26,
                norm_tau=0.51, one_hot_fraction=0.0)]
    results = [_result('vanilla', 50., 90.),
               _result('tips', 52.5, 96.25, tau=tau)]
    figures = _figures(results, tmp_path)
    for figure in figures.values():
        with open(figure, 'rb') as f:
            assert f.read(4) == PNG_MAGIC
    report = write_report(
        results, figures, str(tmp_path / 'report.md'),
        dict(SETTINGS, seed_spread=dict(mIoU=1.0, mASSC=0.5),
             seed_spread_source='a study'),
        docs_dir=osp.join(REPO_ROOT, 'docs'))
    text = open(report).read()
    # variant, runs, 7 metrics, 2 class IoUs, map mean, even-odd, MSB.
    assert ('| tips | 1 | 52.50 | 90.00 | 96.25 | 96.25 | 91.25 | 80.00 | '
            '51.50 | 60.00 | 70.00 | 95.25 | 2.00 | 0.55 | 0.25 |') in text
    assert 'mASSC crop' not in text  # absent metrics get no column
    assert ('- tips vs vanilla: mIoU +2.50 (beyond the seed spread), '
            'mASSC +6.25 (beyond the seed spread).') in text
    assert 'training seeds: 0' in text and 'mASSC' in text
    assert '| tips s0 | backbone.stem_down | 32 | 0.260 | 0.510 | 0% |' \
        in text
    assert 'tau stayed close to uniform' in text
    assert '## Caveats' in text and 'One training seed' in text
    assert '![maps](maps.png)' in text
    # Every relative link of the report points at an existing file.
    links = re.findall(r'\]\(([^)#]+)\)', text)
    assert any(link.endswith('docs/method.md') for link in links)
    for link in links:
        assert osp.exists(osp.join(tmp_path, link)), link


def test_several_seeds_give_mean_and_std_and_optional_columns(tmp_path):
    extra = dict(mASSC_crop=94., mASSC_boundary=70.)
    results = [
        _result('vanilla', 50., 90., seed=0, extra=extra),
        _result('tips', 52., 96., seed=0, extra=extra),
        _result('vanilla', 54., 92., seed=1, extra=extra),
        _result('tips', 53., 96., seed=1, extra=extra),
    ]
    figures = _figures(results, tmp_path)
    text = open(write_report(results, figures, str(tmp_path / 'r.md'),
                             dict(SETTINGS, seeds=[0, 1]))).read()
    assert 'mASSC crop' in text and 'mASSC boundary' in text
    # vanilla mIoU: mean 52, sample std 2.83; crop 94 in both runs.
    assert re.search(r'\| vanilla \| 2 \| 52\.00 ± 2\.83 \| 90\.00 ± 0\.00 '
                     r'\| 91\.00 ± 1\.41 \|', text)
    assert '94.00 ± 0.00 | 70.00 ± 0.00' in text
    assert 'training seeds: 0, 1' in text
    # mIoU +0.50 is within the mean seed std ((2.83 + 0.71) / 2 = 1.77).
    assert 'tips vs vanilla: mIoU +0.50 (within the seed spread)' in text


def test_loss_terms_unscale_the_task_loss():
    history = {'decode.loss_ce': [0.65, 0.13], 'aux.loss_ce': [0.13, 0.065],
               'loss_fm': [0.5, 0.5], 'loss_undo': [0., 0.2],
               'loss': [1.28, 0.895]}
    terms = loss_terms(history, alpha=0.35)
    assert terms['task'] == pytest.approx([1.2, 0.3])
    assert terms['loss_fm'] == [0.5, 0.5] and terms['loss_undo'] == [0., .2]
    assert list(loss_terms({'decode.loss_ce': [1.0]})) == ['task']


class _Predictor:
    """test_step returns fixed predictions against fixed ground truth."""

    def __init__(self, pairs):
        self.pairs = pairs

    def eval(self):
        return self

    def test_step(self, batch):
        out = []
        for pred, gt in self.pairs[batch]:
            s = SegDataSample()
            s.pred_sem_seg = PixelData(data=torch.tensor(pred)[None])
            s.gt_sem_seg = PixelData(data=torch.tensor(gt)[None])
            out.append(s)
        return out


def test_class_iou_by_hand():
    pairs = {0: [([[0, 1], [1, 2]], [[0, 1], [2, 2]])],
             1: [([[0, 0], [1, 1]], [[0, 255], [1, 0]])]}
    ious = class_iou(_Predictor(pairs), [0, 1], 4)
    # (b01 is ignored: label 255.) class 0: pred {a00, b00}, gt {a00, b00,
    # b11}: I 2, U 3; class 1: pred {a01, a10, b10, b11}, gt {a01, b10}:
    # I 2, U 4; class 2: pred {a11}, gt {a10, a11}: I 1, U 2; class 3 in
    # neither: NaN.
    assert ious[:3] == pytest.approx([100 * 2 / 3, 50., 50.])
    assert np.isnan(ious[3])


def test_spread_from_the_one_variant_with_several_seeds(tmp_path):
    results = [_result('vanilla', 50., 90., seed=0),
               _result('tips', 56., 96., seed=0),
               _result('vanilla', 52., 90.5, seed=1)]
    figures = _figures(results, tmp_path)
    text = open(write_report(results, figures, str(tmp_path / 'r.md'),
                             dict(SETTINGS, seeds=[0, 1]))).read()
    assert re.search(r'\| vanilla \| 2 \| 51\.00 ± 1\.41 \|', text)
    assert re.search(r'\| tips \| 1 \| 56\.00 \|', text)
    # Spread (std over vanilla's seeds): mIoU 1.41, mASSC 0.35.
    assert ('Seed-to-seed spread (std over seeds, vanilla (seeds 0, 1)): '
            'mIoU ± 1.41, mASSC ± 0.35') in text
    assert ('tips vs vanilla: mIoU +5.00 (beyond the seed spread), mASSC '
            '+5.75 (beyond the seed spread).') in text
    assert 'The seed spread comes from vanilla only' in text
