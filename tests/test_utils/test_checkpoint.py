"""Checkpoints resume on torch >= 2.6 without ever running code from a file."""
import os
import os.path as osp
import shutil

import pytest
import torch
from mmengine.runner import load_checkpoint
from mmengine.runner.checkpoint import _load_checkpoint

from tests.helpers import MMSEG_TOOLS, REPO_ROOT, TEST_DATA, run_python
from tips_mmseg.datasets import write_toy_dataset
from tips_mmseg.utils import (TRUSTED_ENV, UntrustedCheckpointError,
                              load_from_local_safely, trust_checkpoint)
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
        _load_checkpoint(str(path))
    message = str(info.value)
    assert 'system' in message and TRUSTED_ENV in message
    assert 'trust_checkpoint' in message
    with pytest.raises(UntrustedCheckpointError):
        load_checkpoint(torch.nn.Linear(1, 1), str(path))
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
