"""Checkpoints are written then renamed; a killed run resumes
(CheckpointSafetyHook, opt-in per config)."""
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
from tips_mmseg.engine import CheckpointSafetyHook
from tips_mmseg.utils import (AtomicLocalBackend, atomic_write,
                              find_latest_checkpoint, load_from_local_safely,
                              register_atomic_backend)


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


@pytest.fixture
def renames(monkeypatch):
    """Targets of os.replace calls."""
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(
        os, 'replace', lambda a, b: (seen.append(str(b)), real_replace(a, b)))
    return seen


def test_the_atomic_backend_writes_through_a_rename(tmp_path, renames):
    from mmengine.runner import save_checkpoint
    save_checkpoint({'state_dict': {}}, str(tmp_path / 'plain.pth'))
    assert renames == []  # mmengine's own backend, as without tips_mmseg
    save_checkpoint({'state_dict': {}}, str(tmp_path / 'iter_1.pth'),
                    backend_args=dict(backend=register_atomic_backend()))
    assert renames == [str(tmp_path / 'iter_1.pth')]
    assert 'state_dict' in load_from_local_safely(str(tmp_path /
                                                      'iter_1.pth'))


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


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path):
    return os.stat(path).st_mode & 0o777


def test_new_files_follow_the_umask_and_old_ones_keep_their_mode(
        tmp_path, umask_022):
    AtomicLocalBackend().put(b'x', tmp_path / 'sub' / 'iter_1.pth')
    assert _mode(tmp_path / 'sub' / 'iter_1.pth') == 0o644  # as open() does
    os.umask(0o077)
    atomic_write('y', str(tmp_path / 'private.txt'))
    assert _mode(tmp_path / 'private.txt') == 0o600
    shared = tmp_path / 'shared.pth'
    shared.write_bytes(b'old')
    os.chmod(shared, 0o664)
    AtomicLocalBackend().put(b'new', shared)
    assert _mode(shared) == 0o664 and shared.read_bytes() == b'new'


def test_a_symlink_is_written_through_and_hard_links_stay_linked(tmp_path):
    target = tmp_path / 'real' / 'last_checkpoint'
    target.parent.mkdir()
    target.write_text('old')
    link = tmp_path / 'last_checkpoint'
    link.symlink_to(target)
    AtomicLocalBackend().put_text('new', link)
    assert link.is_symlink() and target.read_text() == 'new'
    twin = tmp_path / 'twin.pth'
    os.link(target, twin)
    atomic_write(b'both', str(target))
    assert twin.read_bytes() == b'both'


def test_a_remote_pointer_is_honoured(tmp_path):
    torch.save({}, tmp_path / 'iter_4.pth')
    (tmp_path / 'last_checkpoint').write_text('s3://bucket/run/iter_8.pth\n')
    assert find_latest_checkpoint(str(tmp_path)) == \
        's3://bucket/run/iter_8.pth'
    from mmengine.runner import runner
    assert runner.find_latest_checkpoint is not find_latest_checkpoint


def _truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])


def test_resume_skips_a_corrupt_newest_checkpoint_and_says_so(
        tmp_path, capsys):
    for n in (2, 4, 6):
        torch.save({'state_dict': {'w': torch.ones(50)}},
                   tmp_path / f'iter_{n}.pth')
    _truncate(tmp_path / 'iter_6.pth')
    (tmp_path / 'iter_4.pth').write_bytes(b'not a checkpoint')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_6.pth'))
    from mmengine.logging import MMLogger
    MMLogger.get_instance('test_resume_skips', log_level='INFO')
    assert find_latest_checkpoint(str(tmp_path)) == str(tmp_path /
                                                        'iter_2.pth')
    log = capsys.readouterr().out
    assert 'Resuming from ' + str(tmp_path / 'iter_2.pth') in log
    assert 'iter_6.pth (truncated' in log
    assert 'iter_4.pth (not a PyTorch' in log


def test_resume_with_no_loadable_checkpoint_is_an_error(tmp_path):
    (tmp_path / 'iter_2.pth').write_bytes(b'')
    with pytest.raises(RuntimeError, match=r'None of the checkpoints in .* '
                       r'loads: .*iter_2.pth \(the file is empty\)'):
        find_latest_checkpoint(str(tmp_path))



def _runner(work_dir, max_iters, hooks=True, **kwargs):
    """A real mmengine Runner of a one-weight model, a checkpoint every
    iteration; with CheckpointSafetyHook as a config would add it."""
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Model(BaseModel):

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(1, 1)

        def forward(self, inputs, labels=None, mode='tensor'):
            loss = (self.linear(inputs) ** 2).mean()
            return dict(loss=loss) if mode == 'loss' else [loss]

    default_hooks = dict(checkpoint=dict(
        type='CheckpointHook', interval=1, by_epoch=False))
    if hooks:
        default_hooks['checkpoint_safety'] = dict(type='CheckpointSafetyHook')
    return Runner(
        model=Model(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=[dict(inputs=torch.ones(1))] * 4,
                              batch_size=2,
                              sampler=dict(type='InfiniteSampler'),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=max_iters),
        default_hooks=default_hooks, default_scope='mmseg',
        log_level='WARNING', experiment_name=f'run{max_iters}{hooks}',
        **kwargs)


def test_the_hook_makes_checkpoint_hook_write_atomically(tmp_path, renames):
    runner = _runner(tmp_path, max_iters=2)
    assert any(isinstance(h, CheckpointSafetyHook) for h in runner.hooks)
    runner.train()
    assert [osp.basename(p) for p in renames] == ['iter_1.pth', 'iter_2.pth']
    renames.clear()
    _runner(tmp_path / 'plain', max_iters=1, hooks=False).train()
    assert renames == []  # a runner without the hook: mmengine's writes


def test_a_second_run_of_the_runner_keeps_the_atomic_writes_quietly(
        tmp_path, renames):
    """train() then a second before_run (as test() after train() does):
    the backend the hook set is no reason to say the writes are left."""
    from mmengine.logging import MMLogger
    runner = _runner(tmp_path, max_iters=2)
    runner.train()
    hook = next(h for h in runner.hooks if isinstance(h, CheckpointSafetyHook))
    messages = []
    logger = MMLogger.get_current_instance()
    original = logger.log
    logger.log = lambda level, msg, *a, **k: messages.append(str(msg))
    try:
        hook.before_run(runner)
    finally:
        logger.log = original
    checkpoint_hook = next(h for h in runner.hooks
                           if type(h).__name__ == 'CheckpointHook')
    assert checkpoint_hook.backend_args == dict(backend='tips_atomic_local')
    assert not any('left as they are' in m for m in messages)


def test_the_hook_resumes_past_a_damaged_newest_checkpoint(tmp_path):
    _runner(tmp_path, max_iters=3).train()
    _truncate(tmp_path / 'iter_3.pth')  # last_checkpoint names it
    runner = _runner(tmp_path, max_iters=4, resume=True)
    runner.train()
    assert runner._load_from == 'tips-local://' + str(tmp_path / 'iter_2.pth')
    assert runner.iter == 4
    assert 'state_dict' in load_from_local_safely(str(tmp_path /
                                                      'iter_4.pth'))


def test_without_the_hook_mmengine_cannot_resume_its_checkpoint(tmp_path):
    """What the hook is for (torch >= 2.6 loads with weights_only=True)."""
    import pickle
    _runner(tmp_path, max_iters=1, hooks=False).train()
    with pytest.raises(pickle.UnpicklingError, match='weights_only'):
        _runner(tmp_path, max_iters=2, hooks=False, resume=True).train()
    runner = _runner(tmp_path, max_iters=2, resume=True)
    runner.train()
    assert runner.iter == 2
