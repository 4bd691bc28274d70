"""The configs travel with the package: ``tips_mmseg.config_path`` finds
them in a checkout, and a wheel built from the tree carries them (and the
model index) under tips_mmseg/.mim, where the installed package finds
them."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys
import zipfile

import pytest

from test_deeplabv3plus_configs import ROOT  # noqa: I100
from tips_mmseg import config_path
from tips_mmseg.configs import model_index_path

REPO = osp.dirname(ROOT)
TOY_TIPS = 'toy/deeplabv3plus_r18-d8-tips_toy-64x64.py'
RELEASE = ('deeplabv3plus/'
           'deeplabv3plus_r18-d8-tips-release_4xb4-20k_voc12aug-512x512.py')


def test_config_path_in_a_checkout():
    want = osp.join(ROOT, TOY_TIPS)
    assert config_path(TOY_TIPS) == want
    assert config_path('configs/' + TOY_TIPS[:-3]) == want  # prefix, no .py
    assert config_path(osp.basename(TOY_TIPS)) == want  # unique file name
    assert model_index_path() == osp.join(REPO, 'model-index.yml')


def test_config_path_names_the_closest_config():
    with pytest.raises(FileNotFoundError,
                       match=f'Closest: {TOY_TIPS}') as err:
        config_path(TOY_TIPS.replace('tips', 'tipz'))
    assert ROOT in str(err.value)


def tree_files(root):
    """Files under ``root`` that a build reads (no caches)."""
    return sorted(
        osp.relpath(p, root)
        for p in glob.glob(osp.join(root, '**', '*'), recursive=True)
        if osp.isfile(p) and '__pycache__' not in p)


def test_wheel_carries_the_configs_and_the_installed_package_finds_them(
        tmp_path):
    src = tmp_path / 'src'
    src.mkdir()
    # What a build reads: the top-level files, the package and the configs.
    for name in os.listdir(REPO):
        if osp.isfile(osp.join(REPO, name)):
            shutil.copy(osp.join(REPO, name), src / name)
    ignore = shutil.ignore_patterns('__pycache__', '.mim')
    for folder in ('tips_mmseg', 'configs'):
        shutil.copytree(osp.join(REPO, folder), src / folder, ignore=ignore)
    # No network: the build uses this environment's setuptools.
    subprocess.run([
        sys.executable, '-m', 'pip', 'wheel', '-q', '--no-deps',
        '--no-build-isolation', '--no-index', '-w', str(tmp_path / 'dist'),
        str(src)
    ], check=True, cwd=str(tmp_path))
    wheel, = glob.glob(str(tmp_path / 'dist' / 'tips_mmseg-*.whl'))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        site = tmp_path / 'site'
        zf.extractall(site)
    configs = tree_files(ROOT)
    assert any(c.endswith('metafile.yaml') for c in configs)
    missing = {f'tips_mmseg/.mim/configs/{c}' for c in configs} - names
    assert not missing
    assert 'tips_mmseg/.mim/model-index.yml' in names
    assert 'tips_mmseg/configs.py' in names

    # The unpacked wheel as the installed package (first on sys.path), run
    # from elsewhere: config_path points into .mim, and the config resolves
    # its relative bases there and mmseg's through mmseg:: paths.
    probe = (
        'import json, tips_mmseg\n'
        'from mmengine.config import Config\n'
        'from tips_mmseg.configs import model_index_path\n'
        f'path = tips_mmseg.config_path({RELEASE!r})\n'
        'cfg = Config.fromfile(path)\n'
        'from tips_mmseg.cli.mmseg_tool import resolve_config\n'
        f'assert resolve_config({TOY_TIPS!r}).startswith(\n'
        '    tips_mmseg.configs.configs_root())\n'
        'print(json.dumps([tips_mmseg.__file__, path, model_index_path(),\n'
        '                  cfg.model.backbone.depth,\n'
        '                  cfg.model.tips_cfg.undo_detach]))\n')
    env = dict(os.environ, PYTHONPATH=str(site))
    out = subprocess.run([sys.executable, '-c', probe], check=True,
                         cwd=str(tmp_path), env=env, capture_output=True,
                         text=True).stdout
    package, path, index, depth, undo_detach = json.loads(
        out.strip().splitlines()[-1])
    mim = osp.join(str(site), 'tips_mmseg', '.mim')
    assert package == osp.join(str(site), 'tips_mmseg', '__init__.py')
    assert path == osp.join(mim, 'configs', RELEASE)
    assert index == osp.join(mim, 'model-index.yml')
    assert depth == 18 and undo_detach is False

    # The installed package's train entry point runs mmseg's own train.py.
    usage = subprocess.run(
        [sys.executable, '-m', 'tips_mmseg.cli.train', '--help'],
        check=True, cwd=str(tmp_path), env=env, capture_output=True,
        text=True).stdout
    assert 'usage:' in usage and '--cfg-options' in usage
