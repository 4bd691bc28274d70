"""The demo's figures and report from hand-made results (no training)."""
import numpy as np

from tips_mmseg.visualization.demo_report import (draw_consistency_maps,
                                                  draw_loss_curves,
                                                  draw_metric_bars,
                                                  write_report)

PNG_MAGIC = b'\x89PNG'


def _result(variant, miou, massc):
    axis = [-1, 0, 1]
    grid = np.full((3, 3), massc)
    grid[1, 1] = 100.
    return dict(
        variant=variant,
        metrics=dict(mIoU=miou, aAcc=90., mASSC=massc, mASSC_circular=massc,
                     mASSC_worst=massc - 5, shift_fidelity=80.,
                     shift_mIoU=miou - 1),
        msb=dict(msb_pixel=0.3, msb_soft=0.55, msb_phase=0.25),
        heatmap=dict(axis=axis, grid=grid.tolist()),
        losses=[2.0, 1.5, 1.2],
        train_s=12.3,
        iters=3)


def test_report_table_and_figures(tmp_path):
    results = [_result('vanilla', 50., 90.), _result('tips', 52.5, 96.25)]
    figures = dict(
        metrics=draw_metric_bars(results, str(tmp_path / 'metrics.png')),
        maps=draw_consistency_maps(results, str(tmp_path / 'maps.png')),
        losses=draw_loss_curves(results, str(tmp_path / 'losses.png')))
    for figure in figures.values():
        with open(figure, 'rb') as f:
            assert f.read(4) == PNG_MAGIC
    report = write_report(
        results, figures, str(tmp_path / 'report.md'),
        dict(data_root='data/toy', iters=3, seed=0, max_shift=8))
    text = open(report).read()
    assert '| tips | 52.50 | 90.00 | 96.25 | 96.25 | 91.25 | 80.00 | 51.50 |' \
        in text
    assert 'tips vs vanilla: mASSC +6.25 points, mIoU +2.50 points.' in text
    assert '![maps](maps.png)' in text
