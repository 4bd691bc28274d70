"""mmseg's own tools/train.py trains the configs/toy TIPS configs (and
resumes)."""
import os.path as osp
import re

from tests.helpers import MMSEG_TOOLS, REPO_ROOT, load_tool, run_python
from tips_mmseg.datasets import write_toy_dataset

TIPS_TOY = osp.join(REPO_ROOT, 'configs', 'toy',
                    'deeplabv3plus_r18-d8-tips_toy-64x64.py')
TIPS_SEGFORMER_TOY = osp.join(REPO_ROOT, 'configs', 'toy',
                              'segformer_mit-b0-tips_toy-64x64.py')


def _train(tmp_path, max_iters, *extra, config=TIPS_TOY):
    return run_python([
        osp.join(MMSEG_TOOLS, 'train.py'), config, '--work-dir', 'wd',
        *extra, '--cfg-options', f'train_cfg.max_iters={max_iters}',
        'train_cfg.val_interval=2', 'default_hooks.checkpoint.interval=2',
        'default_hooks.logger.interval=1', 'train_dataloader.batch_size=2',
        'custom_hooks.1.max_shift=4', 'custom_hooks.1.num_shifts=2',
        f'train_dataloader.dataset.data_root={tmp_path}/toy',
        f'val_dataloader.dataset.data_root={tmp_path}/toy',
        f'test_dataloader.dataset.data_root={tmp_path}/toy'
    ], cwd=tmp_path)


def test_mmseg_train_tool_trains_and_resumes_the_tips_toy_config(tmp_path):
    write_toy_dataset(str(tmp_path / 'toy'), 4, 2, size=32)
    first = _train(tmp_path, 2)
    assert first.returncode == 0, first.stderr[-3000:]
    log = first.stdout + first.stderr
    assert re.search(r'loss_fm: \d', log) and re.search(r'loss_undo: \d', log)
    # The shift metrics sit beside mIoU in the validation line.
    assert re.search(r'mIoU: [\d.]+ .*mASSC: [\d.]+', log)
    assert (tmp_path / 'wd' / 'iter_2.pth').exists()

    resumed = _train(tmp_path, 4, '--resume')
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert 'resumed epoch: 0, iter: 2' in resumed.stdout + resumed.stderr
    assert (tmp_path / 'wd' / 'iter_4.pth').exists()


def test_mmseg_train_tool_trains_the_tips_segformer_toy_config(tmp_path):
    write_toy_dataset(str(tmp_path / 'toy'), 4, 2, size=32)
    result = _train(tmp_path, 3, config=TIPS_SEGFORMER_TOY)
    assert result.returncode == 0, result.stderr[-3000:]
    log = result.stdout + result.stderr
    # TIPS in MiT's four patch embeddings, the attention's key/value
    # reductions named as left strided.
    assert "left these non-overlapping strided convs" in log
    assert "'layers.0.1.0.attn.sr'" in log
    # L_undo switches on at eps * max_iters (iteration 1 of 3) and is not 0.
    undo = [float(v) for v in re.findall(r'loss_undo: ([\d.]+)', log)]
    assert len(undo) == 3 and undo[0] == 0 and undo[-1] > 0
    assert re.search(r'mIoU: [\d.]+ .*mASSC: [\d.]+', log)
    assert (tmp_path / 'wd' / 'iter_3.pth').exists()


def test_demo_tool_writes_results_report_and_figures(tmp_path):
    """tools/demo.py end to end on a tiny set: 2 iterations, 2 variants."""
    import json
    result = run_python([
        osp.join(REPO_ROOT, 'tools', 'demo.py'), '--work-dir', 'wd',
        '--data-root', 'toy', '--variants', 'vanilla,tips', '--seeds', '3',
        '--iters', '2', '--num-train', '2', '--num-val', '2',
        '--max-shift', '2', '--map-images', '1', '--msb-images', '1'
    ], cwd=tmp_path, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert 'writing 2 train + 2 val images' in out
    assert 'Config:' not in out  # no config dump on the console
    rows = json.loads((tmp_path / 'wd' / 'results.json').read_text())
    # Every variant with --seeds, plus the first once more (--spread-seeds,
    # default 1) for the seed-to-seed spread.
    assert [(r['variant'], r['seed']) for r in rows] == [
        ('vanilla', 3), ('tips', 3), ('vanilla', 1)]
    for row in rows:
        for key in ('mIoU', 'aAcc', 'mASSC', 'mASSC_circular'):
            assert 0 <= row['metrics'][key] <= 100
        assert row['iters'] == 2 and len(row['loss_terms']['task']) == 2
        assert row['heatmap']['num_images'] == 1
        assert len(row['heatmap']['axis']) == 5  # -2..2, every pixel
    assert not rows[0]['tau'] and rows[1]['tau']  # TIPS layers only
    assert 'loss_fm' in rows[1]['loss_terms']
    assert 'loss_fm' not in rows[0]['loss_terms']
    report = (tmp_path / 'wd' / 'report.md').read_text()
    assert 'training seeds: 1, 3' in report and 'mASSC' in report
    assert 'Seed-to-seed spread (std over seeds, vanilla (seeds 3, 1))' \
        in report
    for png in ('metrics.png', 'consistency_maps.png', 'losses.png'):
        assert (tmp_path / 'wd' / png).read_bytes()[:4] == b'\x89PNG'
        assert f']({png})' in report
    # Data of the same version and arguments is found, not rewritten.
    demo = load_tool('demo')
    args = demo.parse_args(['--data-root', str(tmp_path / 'toy'),
                            '--num-train', '2', '--num-val', '2'])
    stamp = (tmp_path / 'toy' / 'meta.json').stat().st_mtime_ns
    demo.prepare_data(args)
    assert (tmp_path / 'toy' / 'meta.json').stat().st_mtime_ns == stamp
    args.num_val = 3  # other settings: written again
    demo.prepare_data(args)
    assert len((tmp_path / 'toy' / 'splits' / 'val.txt').read_text().split(
    )) == 3
