"""mmseg's tools/test.py (same arguments) with tips_mmseg imported first,
tips_mmseg.compat.enable() (CPU distributed launch, dataset path checks) and
CheckpointSafetyHook added to configs that lack it (docs/compatibility.md).

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...] ...
    python tools/test.py CONFIG CHECKPOINT --shift-consistency [max_shift=16 num_shifts=3 ...]

``--shift-consistency`` adds ``ShiftConsistencyHook`` (with the KEY=VALUE
arguments that follow it) to ``custom_hooks``, so mASSC & co. are reported
beside mIoU; mmengine's ``--cfg-options`` cannot add a dict to a list.
"""
import os.path as osp
import sys

# A checkout works without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tips_mmseg.cli.mmseg_tool import run  # noqa: E402

if __name__ == '__main__':
    run('test.py')
