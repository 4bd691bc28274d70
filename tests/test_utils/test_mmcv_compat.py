"""The mmcv-lite start-up shim (compat/mmcv_lite_shim): mmseg imports next
to mmcv-lite, compiled ops fail only when called; tips_mmseg neither needs
nor imports it, and says what to install when it is missing."""
import importlib.machinery
import importlib.util
import os
import os.path as osp
import sys
import sysconfig
import types

import mmcv
import pytest

from tests.helpers import REPO_ROOT, run_python

SHIM_DIR = osp.join(REPO_ROOT, 'compat', 'mmcv_lite_shim')
SHIM = 'tips_mmseg_mmcv_lite_shim'

pytestmark = pytest.mark.skipif(
    importlib.machinery.PathFinder.find_spec('mmcv._ext', mmcv.__path__)
    is not None,
    reason='full mmcv installed: the shim is not used')


def load_shim(monkeypatch):
    """The shim module from the checkout (not the installed copy); the
    finder it registers on import is dropped after the test."""
    monkeypatch.setattr(sys, 'meta_path', list(sys.meta_path))
    spec = importlib.util.spec_from_file_location(
        f'_{SHIM}_under_test', osp.join(SHIM_DIR, f'{SHIM}.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_without_site(code, shim_installed):
    """``python -S``: no .pth file of the environment runs, so no shim is
    active unless this one is added as an installed distribution would be
    (``site.addsitedir`` runs the folder's .pth file)."""
    setup = 'import site, sys\n'
    if shim_installed:
        setup += f'site.addsitedir({SHIM_DIR!r})\n'
    paths = [REPO_ROOT, sysconfig.get_paths()['purelib']]
    return run_python(['-S', '-c', setup + code], cwd=REPO_ROOT,
                      env=dict(PYTHONPATH=os.pathsep.join(paths)))


PROBE = r'''
# mmseg first, before tips_mmseg: the start-up shim alone must suffice.
import mmseg.models, mmseg.apis, mmseg.datasets
from mmseg.utils import register_all_modules
register_all_modules()
from mmengine.utils.dl_utils import mmcv_full_available
assert 'tips_mmseg' not in sys.modules, 'the start-up shim must stay light'
assert mmcv_full_available() is False
import torch
from mmcv.ops import nms
try:
    nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
except RuntimeError as error:
    print('OP ERROR:', error)
import tips_mmseg
print('TIPS_MMSEG OK')
'''


def test_with_the_shim_mmseg_imports_and_ops_fail_when_called():
    result = run_without_site(PROBE, shim_installed=True)
    assert result.returncode == 0, result.stderr[-3000:]
    assert 'OP ERROR: mmcv op `nms` needs the compiled extension of full ' \
        'mmcv' in result.stdout
    assert 'TIPS_MMSEG OK' in result.stdout


def test_without_the_shim_tips_mmseg_says_what_to_install():
    result = run_without_site('import tips_mmseg', shim_installed=False)
    assert result.returncode != 0
    assert "No module named 'mmcv._ext'" in result.stderr  # the cause
    assert 'pip install ./compat/mmcv_lite_shim' in result.stderr
    assert 'full mmcv' in result.stderr


def test_the_pth_file_imports_the_shim_module():
    with open(osp.join(SHIM_DIR, f'{SHIM}.pth')) as f:
        assert f.read().strip() == f'import {SHIM}'


def test_placeholder_is_not_installed_over_a_real_extension(monkeypatch):
    shim = load_shim(monkeypatch)
    real = types.ModuleType('mmcv._ext')
    monkeypatch.setitem(sys.modules, 'mmcv._ext', real)
    assert shim.install_placeholder_ext() is False
    assert sys.modules['mmcv._ext'] is real


def test_placeholder_hides_dunder_attributes(monkeypatch):
    shim = load_shim(monkeypatch)
    ext = shim._PlaceholderExt('x')
    assert not hasattr(ext, '__path__')
    with pytest.raises(shim.MissingCompiledOpError, match='full mmcv'):
        ext.roi_align_forward()


def test_a_missing_compiled_op_is_told_through_the_cause_chain():
    """The converter and the zoo check tell a missing compiled op from other
    failures without importing the (optional) shim."""
    from tips_mmseg.compat import is_missing_compiled_op

    class MissingCompiledOpError(RuntimeError):
        pass

    try:
        try:
            raise MissingCompiledOpError('psamask needs full mmcv')
        except MissingCompiledOpError as inner:
            raise TypeError('PSAHead: build failed') from inner
    except TypeError as outer:
        assert is_missing_compiled_op(outer)
    assert not is_missing_compiled_op(TypeError('something else'))
    assert not is_missing_compiled_op(None)
