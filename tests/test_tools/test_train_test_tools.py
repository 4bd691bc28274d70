"""tools/train.py and tools/test.py: fail fast naming the file, resume past a
corrupt checkpoint, Ctrl-C says how to resume, --shift-consistency."""
import json
import os.path as osp
import shutil
import signal
import subprocess
import sys
import time

import cv2
import pytest

from tests.helpers import REPO_ROOT, TEST_DATA, run_python
from tips_mmseg.datasets import write_toy_dataset

TRAIN = osp.join(REPO_ROOT, 'tools', 'train.py')
TEST = osp.join(REPO_ROOT, 'tools', 'test.py')
TINY = osp.join(TEST_DATA, 'tiny_toy_config.py')


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    """A folder with toy data and a 4-iteration run in wd/."""
    root = tmp_path_factory.mktemp('tools')
    write_toy_dataset(str(root / 'data' / 'toy'), 8, 2, size=32)
    result = run_python([TRAIN, TINY, '--work-dir', 'wd'], cwd=root,
                        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def test_missing_config_is_a_one_line_error(tmp_path):
    for tool in (TRAIN, TEST):
        result = run_python([tool, 'configs/nowhere.py', 'x.pth'],
                            cwd=tmp_path, timeout=600)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "config file 'configs/nowhere.py' does not exist" in lines[0]


def test_resume_falls_back_past_a_truncated_newest(trained, tmp_path):
    shutil.copytree(trained / 'data', tmp_path / 'data')
    shutil.copytree(trained / 'wd', tmp_path / 'wd')
    newest = tmp_path / 'wd' / 'iter_4.pth'
    newest.write_bytes(newest.read_bytes()[:5000])
    (tmp_path / 'wd' / 'last_checkpoint').write_text(str(newest))
    resumed = run_python([TRAIN, TINY, '--work-dir', 'wd', '--resume',
                          '--cfg-options', 'train_cfg.max_iters=6'],
                         cwd=tmp_path, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    log = resumed.stdout + resumed.stderr
    assert f'the newest checkpoint that loads: skipped {newest} (truncated' \
        in log
    assert 'resumed epoch: 0, iter: 2' in log
    assert (tmp_path / 'wd' / 'iter_6.pth').is_file()


def test_garbage_checkpoint_names_its_path(trained, tmp_path):
    garbage = tmp_path / 'model.pth'
    garbage.write_bytes(b'<html>404 Not Found</html>\n' * 20)
    result = run_python([TEST, TINY, str(garbage), '--work-dir', 'wd'],
                        cwd=trained, timeout=600)
    assert result.returncode != 0
    last = result.stderr.strip().splitlines()[-1]
    assert 'CorruptCheckpointError' in last
    assert f"Checkpoint '{garbage}' does not load" in last


def test_shift_consistency_switch_adds_the_hook(trained):
    result = run_python([
        TEST, TINY, str(trained / 'wd' / 'iter_4.pth'), '--work-dir',
        'wd_shift', '--shift-consistency', 'max_shift=4', 'num_shifts=1',
        '--cfg-options', 'test_dataloader.dataset.indices=2'
    ], cwd=trained, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    [log] = list((trained / 'wd_shift').glob('*/2*.json'))
    metrics = json.loads(log.read_text().splitlines()[-1])
    assert {'mIoU', 'mASSC', 'shift_fidelity'} <= set(metrics)


def test_class_count_mismatch_is_refused_before_training(trained, tmp_path):
    result = run_python([
        TRAIN, TINY, '--work-dir', str(tmp_path / 'wd'), '--cfg-options',
        'model.decode_head.num_classes=4'
    ], cwd=trained, timeout=600)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(
        'error: model.decode_head.num_classes=4 but train_dataloader.dataset'
        ' (ToyShapesDataset) has 5 classes')
    assert not list((tmp_path / 'wd').rglob('*.pth'))


def test_a_bad_label_file_stops_training_naming_it(trained, tmp_path):
    shutil.copytree(trained / 'data', tmp_path / 'data')
    label_file = tmp_path / 'data/toy/labels/train_0003.png'
    label = cv2.imread(str(label_file), cv2.IMREAD_UNCHANGED)
    label[0, 0] = 9
    cv2.imwrite(str(label_file), label)
    result = run_python([TRAIN, TINY, '--work-dir', 'wd'], cwd=tmp_path,
                        timeout=600)
    assert result.returncode != 0
    assert ('Label map data/toy/labels/train_0003.png (image '
            'data/toy/images/train_0003.png) has label values [9]'
            ) in result.stderr
    assert not list((tmp_path / 'wd').rglob('*.pth'))


def test_ctrl_c_says_how_to_resume(trained, tmp_path):
    shutil.copytree(trained / 'data', tmp_path / 'data')
    args = [sys.executable, TRAIN, TINY, '--work-dir', 'wd',
            '--cfg-options', 'train_cfg.max_iters=1000',
            'default_hooks.checkpoint.interval=1']
    env = dict(__import__('os').environ, PYTHONPATH=REPO_ROOT)
    # A runner that started us in the background (no job control) leaves
    # SIGINT ignored, and an ignored signal stays ignored across exec, so
    # Python would never raise KeyboardInterrupt: restore the default.
    process = subprocess.Popen(
        args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 400
    while time.time() < deadline and not (tmp_path / 'wd' /
                                          'iter_2.pth').exists():
        time.sleep(0.1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=300)
    assert process.returncode == 130, err[-3000:]
    assert 'Training interrupted (Ctrl-C). The newest checkpoint is wd/' \
        'iter_' in err
    assert '--work-dir wd --cfg-options train_cfg.max_iters=1000 ' \
        'default_hooks.checkpoint.interval=1 --resume' in err
    assert 'Traceback' not in err


def test_shift_switch_parsing_and_an_existing_hook_is_updated():
    from tips_mmseg.cli.mmseg_tool import add_shift_hook, pop_switch
    from mmengine.config import Config
    argv, options = pop_switch(
        ['test.py', 'c.py', '--shift-consistency', 'max_shift=4',
         "modes=('standard',)", 'ck.pth', '--work-dir', 'w'],
        '--shift-consistency')
    assert argv == ['test.py', 'c.py', 'ck.pth', '--work-dir', 'w']
    assert options == dict(max_shift=4, modes=('standard', ))
    assert pop_switch(['test.py', 'c.py'], '--shift-consistency') == (
        ['test.py', 'c.py'], None)
    cfg = Config(dict(custom_hooks=[
        dict(type='TIPSProgressHook'),
        dict(type='ShiftConsistencyHook', num_shifts=5)]))
    add_shift_hook(cfg, dict(max_shift=4))
    assert cfg.custom_hooks == [
        dict(type='TIPSProgressHook'),
        dict(type='ShiftConsistencyHook', num_shifts=5, max_shift=4)]
    cfg = Config(dict())
    add_shift_hook(cfg, {})
    assert cfg.custom_hooks == [dict(type='ShiftConsistencyHook')]


def test_config_may_name_one_of_our_configs(tmp_path):
    from tips_mmseg.cli.mmseg_tool import resolve_config
    name = 'toy/deeplabv3plus_r18-d8-tips_toy-64x64.py'
    assert resolve_config(name) == osp.join(REPO_ROOT, 'configs', name)
    own = tmp_path / 'my.py'
    own.write_text('x = 1\n')
    assert resolve_config(str(own)) == str(own)  # a real file wins
    with pytest.raises(FileNotFoundError, match="nor is it one of tips-mmseg"):
        resolve_config('toy/nowhere.py')
