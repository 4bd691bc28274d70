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


def test_benchmark_refuses_amp_without_a_gpu(tmp_path):
    proc = run_python([
        osp.join(REPO_ROOT, 'tools', 'benchmark.py'), '--device', 'cpu',
        '--amp', '--out', str(tmp_path / 'x.json')
    ], cwd=tmp_path)
    assert proc.returncode != 0 and '--amp needs --device cuda' in proc.stderr


def test_layer_benchmark_ratios_and_memory(tmp_path):
    """Tiny shape, CPU: memory ratios are exact byte counts (see the layer
    memory tests); times only need to exist."""
    out = tmp_path / 'layers.json'
    proc = run_python([
        osp.join(REPO_ROOT, 'tools', 'benchmark_layers.py'), '--shape', '2',
        '8', '16', '16', '--iters', '1', '--warmup', '0', '--device', 'cpu',
        '--channels-last', '--out', str(out)
    ], cwd=tmp_path, env={'OMP_NUM_THREADS': '1'}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    layers = json.loads(out.read_text())['layers']
    assert set(layers) == {'strided', 'TIPS', 'BlurPool', 'APS', 'LPS'}
    assert all(r['time_ms'] > 0 for r in layers.values())
    # Output 1/4 of the input; TIPS keeps its input too (4 + 1), BlurPool
    # and APS only the output - plus small per-channel tensors (tau, the
    # blur kernel), under 10% at this tiny size.
    assert 5 <= layers['TIPS']['memory_ratio'] < 5.3
    assert 1 <= layers['BlurPool']['memory_ratio'] < 1.1
    assert 1 <= layers['APS']['memory_ratio'] < 1.1
