"""mmseg's tools/test.py (same arguments) with tips_mmseg imported first.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--cfg-options k=v ...] ...
"""
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.abspath(__file__)))
from _mmseg_tool import run  # noqa: E402

if __name__ == '__main__':
    run('test.py')
