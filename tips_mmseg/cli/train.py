"""mmseg's tools/train.py with tips-mmseg's additions (see
:mod:`tips_mmseg.cli.mmseg_tool`): ``python -m tips_mmseg.cli.train ...``."""
from tips_mmseg.cli.mmseg_tool import run

if __name__ == '__main__':
    run('train.py')
