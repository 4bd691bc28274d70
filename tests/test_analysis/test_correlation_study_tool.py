"""tools/correlation_study.py: resume logic and a tiny real study."""
import json

import pytest

from tips_mmseg.analysis.correlation import ROW_METRIC_KEYS
from tests.helpers import load_tool
from tips_mmseg.datasets import write_toy_dataset


@pytest.fixture(scope='module')
def tool():
    return load_tool('correlation_study')


@pytest.fixture
def tiny_data(tmp_path):
    root = tmp_path / 'toy'
    write_toy_dataset(str(root), 8, 4, size=32)
    return root


def fake_run_one(tool_module, calls):
    """A stand-in for training + measuring that records what it ran."""

    def run_one(variant, seed, args):
        calls.append((variant, seed))
        index = ('vanilla', 'blurpool', 'aps', 'lps', 'tips').index(variant)
        row = dict(variant=variant, seed=seed, mIoU=30.0, aAcc=80.0,
                   msb_soft=0.7 - 0.05 * index + 0.01 * seed,
                   msb_pixel=0.3, msb_phase=None,
                   mASSC=80.0 + 3 * index, mASSC_circular=90.0,
                   mASSC_worst=70.0, shift_fidelity=60.0,
                   settings=tool_module.study_settings(args))
        tool_module.save_run(
            tool_module.run_result_path(args.work_dir, variant, seed), row)
        return row

    return run_one


def test_resume_skips_finished_runs(tool, tiny_data, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(tool, 'run_one', fake_run_one(tool, calls))
    argv = ['--variants', 'vanilla,aps,tips', '--seeds', '0,1', '--iters',
            '5', '--data-root', str(tiny_data), '--work-dir',
            str(tmp_path / 'study')]
    tool.main(argv)
    assert calls == [('vanilla', 0), ('aps', 0), ('tips', 0),
                     ('vanilla', 1), ('aps', 1), ('tips', 1)]

    calls.clear()
    results = tool.main(argv)  # everything is there: nothing reruns
    assert calls == []
    assert len(results['rows']) == 6

    calls.clear()
    tool.main(argv[:-4] + ['--iters', '6'] + argv[-4:])  # other settings
    assert len(calls) == 6


def test_summary_only_trains_nothing(tool, tiny_data, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(tool, 'run_one', fake_run_one(tool, calls))
    base = ['--variants', 'vanilla,blurpool,aps', '--iters', '5',
            '--data-root', str(tiny_data), '--work-dir',
            str(tmp_path / 'study')]
    tool.main(base + ['--seeds', '0'])
    calls.clear()
    results = tool.main(base + ['--seeds', '0,1', '--summary-only'])
    assert calls == []
    assert [r['seed'] for r in results['rows']] == [0, 0, 0]
    coefficient = results['coefficients']['msb_soft']['mASSC']
    assert coefficient['n'] == 3 and coefficient['pearson_r'] < -0.99


def test_runs_that_learned_nothing_are_left_out(tool, tiny_data, tmp_path,
                                                 monkeypatch):
    calls = []
    fake = fake_run_one(tool, calls)

    def run_one(variant, seed, args):
        row = fake(variant, seed, args)
        if variant == 'aps':  # all background: mIoU 16.71, 100% consistent
            row.update(mIoU=16.71, mASSC=100.0)
            tool.save_run(
                tool.run_result_path(args.work_dir, variant, seed), row)
        return row

    monkeypatch.setattr(tool, 'run_one', run_one)
    work_dir = tmp_path / 'study'
    results = tool.main([
        '--variants', 'vanilla,blurpool,aps,lps', '--seeds', '0', '--iters',
        '5', '--data-root', str(tiny_data), '--work-dir', str(work_dir)])
    assert results['excluded_runs'] == ['aps_seed0']
    assert len(results['rows']) == 4  # every run is still listed
    assert results['coefficients']['msb_soft']['mASSC']['n'] == 3
    assert results['coefficients_all_runs']['msb_soft']['mASSC']['n'] == 4
    assert '| aps (excluded) |' in (work_dir / 'summary.md').read_text()
    kept_all = tool.main([
        '--variants', 'vanilla,blurpool,aps,lps', '--seeds', '0', '--iters',
        '5', '--data-root', str(tiny_data), '--work-dir', str(work_dir),
        '--min-miou', '-1', '--summary-only'])
    assert kept_all['excluded_runs'] == []


def test_tiny_study_end_to_end(tool, tiny_data, tmp_path):
    """Real training (2 iterations) and measuring, two variants."""
    work_dir = tmp_path / 'study'
    results = tool.main([
        '--variants', 'vanilla,tips', '--seeds', '0', '--iters', '2',
        '--num-shifts', '1', '--max-shift', '2', '--msb-images', '2',
        '--min-miou', '-1',  # two iterations learn nothing: keep them all
        '--data-root', str(tiny_data), '--work-dir', str(work_dir)
    ])
    on_disk = json.loads((work_dir / 'results.json').read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert set(on_disk) >= {'settings', 'primary_msb', 'rows',
                            'partial_coefficients',
                            'variant_means', 'coefficients',
                            'coefficients_variant_means'}
    assert on_disk['primary_msb'] == 'msb_soft'
    assert [(r['variant'], r['seed']) for r in on_disk['rows']] == [
        ('vanilla', 0), ('tips', 0)]
    for row in on_disk['rows']:
        assert set(ROW_METRIC_KEYS) <= set(row)
        assert 0 <= row['msb_soft'] <= 1
        assert 0 <= row['mASSC'] <= 100 and 0 <= row['mIoU'] <= 100
    # Two runs: too few for a coefficient, and the files still come out.
    assert on_disk['coefficients']['msb_soft']['mASSC']['n'] == 2
    assert (work_dir / 'correlation_scatter.png').stat().st_size > 0
    assert '## Runs' in (work_dir / 'summary.md').read_text()
    for name in ('vanilla_seed0', 'tips_seed0'):
        assert (work_dir / 'runs' / f'{name}.json').is_file()
        # The checkpoint is dropped once the row is stored.
        assert not (work_dir / name / 'iter_2.pth').exists()
