"""mmseg's tools/train.py (same arguments) with tips_mmseg imported first,
tips_mmseg.compat.enable() (CPU distributed launch, dataset path checks) and
CheckpointSafetyHook added to configs that lack it (docs/compatibility.md).

    python tools/train.py CONFIG [--work-dir DIR] [--cfg-options k=v ...] ...
"""
import os.path as osp
import sys

# A checkout works without installing the package.
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))
from tips_mmseg.cli.mmseg_tool import run  # noqa: E402

if __name__ == '__main__':
    run('train.py')
