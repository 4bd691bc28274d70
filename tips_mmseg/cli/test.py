"""mmseg's tools/test.py with tips-mmseg's additions (see
:mod:`tips_mmseg.cli.mmseg_tool`): ``python -m tips_mmseg.cli.test ...``."""
from tips_mmseg.cli.mmseg_tool import run

if __name__ == '__main__':
    run('test.py')
