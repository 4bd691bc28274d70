"""tools/benchmark_onnx.py at a tiny size (figures, no timing assertions)."""
import json

import pytest

from tests.helpers import load_tool

pytest.importorskip('onnxruntime')


def test_benchmark_prints_a_ratio_per_variant(tmp_path, capsys):
    out = tmp_path / 'bench.json'
    results = load_tool('benchmark_onnx').main([
        '--variants', 'vanilla,aps', '--size', '33', '31', '--iters', '1',
        '--warmup', '0', '--out', str(out)])
    assert set(results) == {'vanilla', 'aps'}
    for r in results.values():
        assert r['pytorch_ms'] > 0 and r['onnxruntime_ms'] > 0
        assert r['speedup'] == pytest.approx(
            r['pytorch_ms'] / r['onnxruntime_ms'])
    assert json.loads(out.read_text())['variants'].keys() == results.keys()
    assert '| aps |' in capsys.readouterr().out


def test_benchmark_rejects_unknown_variants():
    with pytest.raises(SystemExit, match='maxblur'):
        load_tool('benchmark_onnx').main(['--variants', 'vanilla,maxblur'])
