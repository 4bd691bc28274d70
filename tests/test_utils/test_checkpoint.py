"""Checkpoints resume on torch >= 2.6 without ever running code from a file
(``tips-local://`` loader; CheckpointSafetyHook routes a runner's loads
through it)."""
import os
import os.path as osp
import shutil

import pytest
import torch
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

from tests.helpers import MMSEG_TOOLS, REPO_ROOT, TEST_DATA, run_python
from tips_mmseg.datasets import write_toy_dataset
from tips_mmseg.utils import (SAFE_SCHEME, TRUSTED_ENV,
                              UntrustedCheckpointError,
                              load_from_local_safely, safe_checkpoint_path,
                              trust_checkpoint)
from tips_mmseg.utils import checkpoint as checkpoint_module


class _RunsCode:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}', ))


@pytest.fixture
def evil_checkpoint(tmp_path):
    marker = tmp_path / 'code_ran'
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'meta': _RunsCode(marker)}, path)
    return path, marker


def test_evil_checkpoint_is_refused_and_runs_nothing(evil_checkpoint):
    path, marker = evil_checkpoint
    with pytest.raises(UntrustedCheckpointError) as info:
        _load_checkpoint(safe_checkpoint_path(path))
    message = str(info.value)
    assert 'system' in message and TRUSTED_ENV in message
    assert 'trust_checkpoint' in message
    with pytest.raises(UntrustedCheckpointError):
        load_checkpoint(torch.nn.Linear(1, 1), safe_checkpoint_path(path))
    assert not marker.exists()


def test_trusted_file_loads_fully(evil_checkpoint, monkeypatch):
    path, marker = evil_checkpoint
    monkeypatch.setattr(checkpoint_module, '_trusted_paths', set())
    monkeypatch.setenv(TRUSTED_ENV, str(path.parent))
    load_from_local_safely(str(path))
    assert marker.exists()  # the user opted in: the file was fully unpickled


def test_trust_checkpoint_is_per_file(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_module, '_trusted_paths', set())
    monkeypatch.delenv(TRUSTED_ENV, raising=False)
    trust_checkpoint(str(tmp_path / 'a.pth'))
    assert checkpoint_module.is_trusted(str(tmp_path / 'a.pth'))
    assert not checkpoint_module.is_trusted(str(tmp_path / 'a.pth.evil'))
    assert not checkpoint_module.is_trusted(str(tmp_path / 'b.pth'))


def test_getattr_stand_in_allows_only_history_buffer_statistics():
    import pickle
    from mmengine.logging import HistoryBuffer
    assert checkpoint_module.history_buffer_getattr(
        HistoryBuffer, 'mean') is HistoryBuffer.mean
    with pytest.raises(pickle.UnpicklingError):
        checkpoint_module.history_buffer_getattr(HistoryBuffer, '__init__')
    with pytest.raises(pickle.UnpicklingError):
        checkpoint_module.history_buffer_getattr(os, 'system')


def test_mmseg_train_resumes_and_test_refuses_evil_file(tmp_path,
                                                         evil_checkpoint):
    """mmseg's own tools/train.py trains, resumes; tools/test.py refuses."""
    write_toy_dataset(str(tmp_path / 'data' / 'toy'), 8, 4, size=32)
    config = str(tmp_path / 'tiny.py')
    shutil.copy(osp.join(TEST_DATA, 'tiny_toy_config.py'), config)
    train = osp.join(MMSEG_TOOLS, 'train.py')
    first = run_python([train, config, '--work-dir', 'wd'], cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert (tmp_path / 'wd' / 'iter_4.pth').exists()

    resumed = run_python([
        train, config, '--work-dir', 'wd', '--resume', '--cfg-options',
        'train_cfg.max_iters=6'
    ], cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert 'resumed epoch: 0, iter: 4' in log
    assert (tmp_path / 'wd' / 'iter_6.pth').exists()

    evil_path, marker = evil_checkpoint
    refused = run_python(
        [osp.join(MMSEG_TOOLS, 'test.py'), config, str(evil_path),
         '--work-dir', 'wd_test'], cwd=tmp_path)
    assert refused.returncode != 0
    assert 'UntrustedCheckpointError' in refused.stderr
    assert not marker.exists()


def test_our_test_tool_refuses_evil_file(tmp_path, evil_checkpoint):
    write_toy_dataset(str(tmp_path / 'data' / 'toy'), 2, 2, size=32)
    evil_path, marker = evil_checkpoint
    refused = run_python([
        osp.join(REPO_ROOT, 'tools', 'test.py'),
        osp.join(TEST_DATA, 'tiny_toy_config.py'), str(evil_path),
        '--work-dir', 'wd'
    ], cwd=tmp_path)
    assert refused.returncode != 0
    assert 'UntrustedCheckpointError' in refused.stderr
    assert not marker.exists()


def test_a_refusal_is_the_unpickling_error_callers_catch(evil_checkpoint):
    import pickle
    path, marker = evil_checkpoint
    try:
        _load_checkpoint(safe_checkpoint_path(path))
    except pickle.UnpicklingError as err:  # what torch raises without us
        assert isinstance(err, UntrustedCheckpointError)
    else:
        pytest.fail('not refused')
    assert not marker.exists()


def test_only_the_added_prefix_gets_our_loader():
    from mmengine.runner import checkpoint as mmengine_checkpoint
    from mmengine.runner.checkpoint import CheckpointLoader
    assert safe_checkpoint_path('/x/y.pth') == SAFE_SCHEME + '/x/y.pth'
    assert CheckpointLoader._get_checkpoint_loader(
        SAFE_SCHEME + '/x/y.pth') is checkpoint_module.load_from_tips_local
    for name in ('a.pth', '/x/y.pth', ' s3://x.pth', 'lol://x.pth'):
        assert CheckpointLoader._get_checkpoint_loader(
            name) is mmengine_checkpoint.load_from_local
    # URLs and remote paths are left to mmengine's loaders
    for url in ('https://x/y.pth', 's3://b/y.pth', 'open-mmlab://resnet'):
        assert safe_checkpoint_path(url) == url


def test_plain_mmengine_loading_is_torch_s(evil_checkpoint):
    """Without the prefix mmengine loads as it always does: torch refuses
    the file (weights_only), with torch's error, not ours."""
    import pickle
    path, marker = evil_checkpoint
    with pytest.raises(pickle.UnpicklingError) as info:
        _load_checkpoint(str(path))
    assert not isinstance(info.value, UntrustedCheckpointError)
    assert not marker.exists()


def test_allow_list_is_confined_to_loads_through_mmengine(tmp_path):
    import numpy as np
    import pickle
    path = tmp_path / 'arrays.pth'
    torch.save({'a': np.arange(3)}, path)
    before = list(torch.serialization.get_safe_globals())
    assert not any('numpy' in str(g) or 'mmengine' in str(g) for g in before)
    with pytest.raises(pickle.UnpicklingError):  # torch's rule elsewhere
        torch.load(path, weights_only=True)
    assert (_load_checkpoint(safe_checkpoint_path(path))['a'] ==
            np.arange(3)).all()
    # Ours are lifted again; nothing the process had is lost. (torch may
    # register its own types meanwhile, e.g. when torch.distributed.tensor
    # is first imported, so this is no list equality.)
    after = list(torch.serialization.get_safe_globals())
    assert not any('numpy' in str(g) or 'mmengine' in str(g) for g in after)
    assert all(g in after for g in before)


def test_a_load_keeps_globals_the_user_allowed(tmp_path):
    import numpy as np
    path = tmp_path / 'arrays.pth'
    torch.save({'a': np.arange(3)}, path)
    mine = checkpoint_module.safe_checkpoint_globals()
    torch.serialization.add_safe_globals(mine)
    try:
        _load_checkpoint(safe_checkpoint_path(path))
        # still allowed after our per-load allow-list was lifted
        assert (torch.load(path, weights_only=True)['a'] ==
                np.arange(3)).all()
    finally:
        torch.serialization.safe_globals(mine).__exit__(None, None, None)
    assert not any('numpy' in str(g)
                   for g in torch.serialization.get_safe_globals())


def _truncated(tmp_path):
    good = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.ones(100)}}, good)
    data = good.read_bytes()
    bad = tmp_path / 'iter_4.pth'
    bad.write_bytes(data[:len(data) // 2])
    return bad


@pytest.mark.parametrize('kind', ['truncated', 'garbage', 'text', 'empty'])
def test_a_bad_file_is_reported_with_its_path(tmp_path, kind):
    if kind == 'truncated':
        path = _truncated(tmp_path)
        torch_error = RuntimeError
    else:
        path = tmp_path / 'iter_4.pth'
        path.write_bytes({'garbage': os.urandom(2000), 'text': b'hello\n' * 9,
                          'empty': b''}[kind])
        try:
            torch.load(path, weights_only=True)
        except Exception as err:
            torch_error = type(err)
    with pytest.raises(checkpoint_module.CorruptCheckpointError) as info:
        load_checkpoint(torch.nn.Linear(1, 1), safe_checkpoint_path(path))
    assert str(path) in str(info.value)
    assert 'does not load' in str(info.value)
    assert isinstance(info.value, torch_error)  # callers' except still works
    assert not isinstance(info.value, UntrustedCheckpointError)


def test_a_whole_file_s_other_errors_pass_unchanged(tmp_path, monkeypatch):
    path = tmp_path / 'ok.pth'
    torch.save({'w': torch.ones(1)}, path)

    def fail(*args, **kwargs):
        raise RuntimeError('Attempting to deserialize object on a CUDA '
                           'device')

    monkeypatch.setattr(torch, 'load', fail)
    with pytest.raises(RuntimeError, match='CUDA device') as info:
        load_from_local_safely(str(path))
    assert not isinstance(info.value, checkpoint_module.CorruptCheckpointError)
