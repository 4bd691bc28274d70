"""mmseg's own tools/train.py trains a configs/toy TIPS config and resumes."""
import os.path as osp
import re

from tests.helpers import MMSEG_TOOLS, REPO_ROOT, run_python
from tips_mmseg.datasets import write_toy_dataset

TIPS_TOY = osp.join(REPO_ROOT, 'configs', 'toy',
                    'deeplabv3plus_r18-d8-tips_toy-64x64.py')


def _train(tmp_path, max_iters, *extra):
    return run_python([
        osp.join(MMSEG_TOOLS, 'train.py'), TIPS_TOY, '--work-dir', 'wd',
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
