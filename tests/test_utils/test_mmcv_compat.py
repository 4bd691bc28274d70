"""mmseg imports next to mmcv-lite; compiled ops fail only when called."""
import sys

import pytest

from tests.helpers import REPO_ROOT, run_python

pytestmark = pytest.mark.skipif(
    'mmcv._ext' in sys.modules
    and not getattr(sys.modules['mmcv._ext'], 'is_placeholder', False),
    reason='full mmcv installed: the placeholder is not used')

PROBE = r'''
import sys
# mmseg first, before tips_mmseg: the start-up hook alone must suffice.
import mmseg.models, mmseg.apis, mmseg.datasets
from mmseg.utils import register_all_modules
register_all_modules()
from mmengine.utils.dl_utils import mmcv_full_available
assert 'tips_mmseg' not in sys.modules, 'the start-up hook must stay light'
assert mmcv_full_available() is False
import torch
from mmcv.ops import nms
try:
    nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
except RuntimeError as error:
    print('OP ERROR:', error)
'''


def test_mmseg_imports_and_ops_fail_when_called():
    result = run_python(['-c', PROBE], cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'OP ERROR: mmcv op `nms` needs the compiled extension of full ' \
        'mmcv' in result.stdout


def test_placeholder_is_not_installed_over_a_real_extension(monkeypatch):
    import types

    import _tips_mmseg_bootstrap as bootstrap
    real = types.ModuleType('mmcv._ext')
    monkeypatch.setitem(sys.modules, 'mmcv._ext', real)
    assert bootstrap.install_placeholder_ext() is False
    assert sys.modules['mmcv._ext'] is real


def test_placeholder_hides_dunder_attributes():
    import _tips_mmseg_bootstrap as bootstrap
    ext = bootstrap._PlaceholderExt('x')
    assert not hasattr(ext, '__path__')
    with pytest.raises(bootstrap.MissingCompiledOpError, match='full mmcv'):
        ext.roi_align_forward()
