"""tools/benchmark.py end to end at a tiny size (no timing assertions)."""
import json
import os.path as osp

from tests.helpers import REPO_ROOT, run_python

METRICS = ('train_step_s', 'infer_s', 'gflops', 'params_m', 'peak_mem_mb')


def test_benchmark_writes_positive_figures_for_each_variant(tmp_path):
    out = tmp_path / 'bench.json'
    proc = run_python([
        osp.join(REPO_ROOT, 'tools', 'benchmark.py'), '--depth', '18',
        '--size', '64', '--batch', '2', '--iters', '1', '--warmup', '0',
        '--variants', 'vanilla,tips', '--device', 'cpu', '--out', str(out)
    ], cwd=tmp_path, env={'OMP_NUM_THREADS': '1'}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert set(result['variants']) == {'vanilla', 'tips'}
    for figures in result['variants'].values():
        assert set(METRICS) <= set(figures)
        assert all(figures[key] > 0 for key in METRICS)
    # TIPS adds 10 parameters per channel of each downsampler, and work.
    tips, vanilla = result['variants']['tips'], result['variants']['vanilla']
    assert tips['params_m'] > vanilla['params_m']
    assert tips['gflops'] > vanilla['gflops']
    assert '| tips |' in proc.stdout and '(1.00x)' in proc.stdout


def test_benchmark_rejects_unknown_variants(tmp_path):
    proc = run_python([
        osp.join(REPO_ROOT, 'tools', 'benchmark.py'), '--variants',
        'vanilla,maxblur', '--out', str(tmp_path / 'x.json')
    ], cwd=tmp_path)
    assert proc.returncode != 0 and 'maxblur' in proc.stderr
