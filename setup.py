"""Packaging of tips-mmseg: the ``tips_mmseg`` package only.

With mmcv-lite, mmseg needs a start-up shim to import at all; it is a
distribution of its own (compat/mmcv_lite_shim, docs/compatibility.md) that
only the mmcv-lite route installs (``make venv`` does, with the default
``EXTRAS=lite,tests``).
"""
import os.path as osp
import shutil

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def copy_mim_files():
    """Put configs/ and model-index.yml into tips_mmseg/.mim, where the
    wheel carries them (as mmseg ships its own under mmseg/.mim):
    ``tips_mmseg.config_path`` and mim find them in an installed package.
    Built from an sdist, .mim is already there."""
    mim = osp.join(HERE, 'tips_mmseg', '.mim')
    if not osp.isfile(osp.join(HERE, 'model-index.yml')):
        return
    shutil.rmtree(mim, ignore_errors=True)
    shutil.copytree(osp.join(HERE, 'configs'), osp.join(mim, 'configs'),
                    ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy(osp.join(HERE, 'model-index.yml'), mim)


copy_mim_files()


def read_version():
    scope = {}
    with open(osp.join(HERE, 'tips_mmseg', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='tips-mmseg',
    version=read_version(),
    description='Translation Invariant Polyphase Sampling (TIPS) and '
    'shift-invariance tools for MMSegmentation 1.x',
    long_description=open(osp.join(HERE, 'README.md')).read()
    if osp.exists(osp.join(HERE, 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(include=['tips_mmseg', 'tips_mmseg.*']),
    package_data={
        'tips_mmseg': [
            '.mim/model-index.yml', '.mim/configs/**/*.py',
            '.mim/configs/**/*.md', '.mim/configs/**/*.yaml'
        ]
    },
    python_requires='>=3.8',
    install_requires=[
        'torch',
        'mmengine>=0.10,<1.0',
        'mmsegmentation>=1.2,<2.0',
        'opencv-python',
        'ftfy',
        'regex',
        'setuptools<81',
        'numpy',
        'matplotlib',
        'scipy',
    ],
    extras_require={
        # mmcv-lite also needs compat/mmcv_lite_shim (not on PyPI: install
        # it from the checkout; `make venv` does).
        'lite': ['mmcv-lite>=2.0,<2.2'],
        'full': ['mmcv>=2.0,<2.2'],
        # timm: mmseg's TIMMBackbone (timm's CNNs) under ShiftInvariantWrapper.
        'tests': ['pytest', 'pytest-xdist', 'hypothesis', 'onnx', 'onnxruntime',
                  'onnxscript', 'timm'],
        'deploy': ['onnx', 'onnxruntime', 'onnxscript'],
        'timm': ['timm'],
    },
    zip_safe=False,
)
