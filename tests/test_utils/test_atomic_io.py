"""Checkpoints are written then renamed; a killed run resumes."""
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import MMSEG_TOOLS, REPO_ROOT, TEST_DATA
from tips_mmseg.datasets import write_toy_dataset
from tips_mmseg.utils import (atomic_write, find_latest_checkpoint,
                              load_from_local_safely)


def test_failed_write_leaves_the_old_file_and_no_debris(tmp_path,
                                                       monkeypatch):
    target = tmp_path / 'iter_2.pth'
    atomic_write(b'complete', str(target))

    def crash(*args):
        raise KeyboardInterrupt('killed mid-write')

    monkeypatch.setattr(os, 'fsync', crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write(b'half', str(target))
    assert target.read_bytes() == b'complete'
    assert os.listdir(tmp_path) == ['iter_2.pth']


def test_mmengine_checkpoint_writes_go_through_a_rename(tmp_path,
                                                        monkeypatch):
    renames = []
    real_replace = os.replace
    monkeypatch.setattr(
        os, 'replace', lambda a, b: (renames.append(b), real_replace(a, b)))
    from mmengine.runner import save_checkpoint
    save_checkpoint({'state_dict': {}}, str(tmp_path / 'iter_1.pth'))
    assert renames == [str(tmp_path / 'iter_1.pth')]


@pytest.mark.parametrize('pointer', [None, '', 'gone.pth'])
def test_resume_falls_back_to_the_newest_complete_checkpoint(
        tmp_path, pointer):
    for name in ('iter_2.pth', 'iter_10.pth', '.iter_12.pth.abc.tmp'):
        torch.save({}, tmp_path / name)
    if pointer is not None:
        (tmp_path / 'last_checkpoint').write_text(
            pointer and str(tmp_path / pointer))
    assert find_latest_checkpoint(str(tmp_path)) == str(tmp_path /
                                                        'iter_10.pth')


def test_pointer_wins_when_it_names_a_file(tmp_path):
    torch.save({}, tmp_path / 'iter_2.pth')
    torch.save({}, tmp_path / 'iter_4.pth')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_2.pth'))
    assert find_latest_checkpoint(str(tmp_path)) == str(tmp_path /
                                                        'iter_2.pth')


def test_kill_9_during_training_then_resume_reaches_the_end(tmp_path):
    write_toy_dataset(str(tmp_path / 'data' / 'toy'), 8, 2, size=32)
    config = str(tmp_path / 'tiny.py')
    shutil.copy(osp.join(TEST_DATA, 'tiny_toy_config.py'), config)
    max_iters = 30
    args = [
        sys.executable,
        osp.join(MMSEG_TOOLS, 'train.py'), config, '--work-dir', 'wd',
        '--cfg-options', f'train_cfg.max_iters={max_iters}',
        f'train_cfg.val_interval={max_iters}',
        'default_hooks.checkpoint.interval=1',
        f'param_scheduler.0.end={max_iters}'
    ]
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    work_dir = tmp_path / 'wd'
    process = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    # Kill while checkpoints are being written, at an arbitrary point.
    while time.time() < deadline and not (work_dir / 'iter_3.pth').exists():
        time.sleep(0.05)
    time.sleep(0.37)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (work_dir / f'iter_{max_iters}.pth').exists()

    resumed = subprocess.run(
        args + ['--resume'], cwd=tmp_path, env=env, capture_output=True,
        text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_at = re.search(r'resumed epoch: 0, iter: (\d+)',
                           resumed.stdout + resumed.stderr)
    assert resumed_at and int(resumed_at.group(1)) >= 3
    assert (work_dir / f'iter_{max_iters}.pth').exists()
    # A kill can leave a temporary file of an unfinished write behind, never
    # a half-written checkpoint: every one of them loads whole.
    for name in os.listdir(work_dir):
        if name.startswith('iter_'):
            assert 'state_dict' in load_from_local_safely(str(work_dir / name))
