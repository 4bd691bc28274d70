"""Packaging of tips-mmseg.

Besides the ``tips_mmseg`` package, the wheel carries ``tips_mmseg-compat.pth``
and the tiny module it imports (``_tips_mmseg_bootstrap``), so that mmseg
imports next to mmcv-lite in every interpreter of the environment - also in
mmseg's own ``tools/train.py``, which imports mmseg before reading a config.
"""
import os.path as osp
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

try:
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # setuptools < 64 has no PEP 660 editable installs
    editable_wheel = None

HERE = osp.dirname(osp.abspath(__file__))
PTH_FILE = 'tips_mmseg-compat.pth'


class BuildPyWithPth(build_py):
    """build_py that also puts the start-up ``.pth`` file next to packages."""

    def run(self):
        super().run()
        self.copy_file(osp.join(HERE, PTH_FILE), osp.join(self.build_lib, PTH_FILE))

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [
            osp.join(self.build_lib, PTH_FILE)
        ]


class _StrategyWithPth:
    """Wraps setuptools' editable strategy to add the start-up ``.pth``."""

    def __init__(self, strategy):
        self.strategy = strategy

    def __call__(self, wheel, files, mapping):
        self.strategy(wheel, files, mapping)
        with open(osp.join(HERE, PTH_FILE), 'rb') as f:
            wheel.writestr(PTH_FILE, f.read())

    def __enter__(self):
        self.strategy.__enter__()
        return self

    def __exit__(self, *exc_info):
        return self.strategy.__exit__(*exc_info)


CMDCLASS = {'build_py': BuildPyWithPth}
if editable_wheel is not None:

    class EditableWheelWithPth(editable_wheel):
        """``pip install -e`` gets the start-up ``.pth`` file too."""

        def _select_strategy(self, *args, **kwargs):
            return _StrategyWithPth(super()._select_strategy(*args, **kwargs))

    CMDCLASS['editable_wheel'] = EditableWheelWithPth


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
    py_modules=['_tips_mmseg_bootstrap'],
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
        'lite': ['mmcv-lite>=2.0,<2.2'],
        'full': ['mmcv>=2.0,<2.2'],
        # timm: mmseg's TIMMBackbone (timm's CNNs) under ShiftInvariantWrapper.
        'tests': ['pytest', 'pytest-xdist', 'hypothesis', 'onnx', 'onnxruntime',
                  'onnxscript', 'timm'],
        'deploy': ['onnx', 'onnxruntime', 'onnxscript'],
        'timm': ['timm'],
    },
    cmdclass=CMDCLASS,
    zip_safe=False,
)
