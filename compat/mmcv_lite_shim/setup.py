"""tips-mmseg-mmcv-lite-shim: the start-up shim that lets mmseg import next
to mmcv-lite (see tips_mmseg_mmcv_lite_shim.py). Only for environments with
mmcv-lite; with full mmcv do not install it.

    pip install ./compat/mmcv_lite_shim

The wheel carries the module and ``tips_mmseg_mmcv_lite_shim.pth`` (which
Python runs at start-up) at the top of site-packages.
"""
import os.path as osp

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
PTH_FILE = 'tips_mmseg_mmcv_lite_shim.pth'


class BuildPyWithPth(build_py):
    """build_py that also puts the start-up ``.pth`` file next to the
    module."""

    def run(self):
        super().run()
        self.copy_file(osp.join(HERE, PTH_FILE),
                       osp.join(self.build_lib, PTH_FILE))

    def get_outputs(self, include_bytecode=True):
        return super().get_outputs(include_bytecode) + [
            osp.join(self.build_lib, PTH_FILE)
        ]


setup(
    name='tips-mmseg-mmcv-lite-shim',
    version='0.1.0',
    description='Start-up shim letting mmseg import next to mmcv-lite '
    '(compiled mmcv ops fail when called, with a clear error)',
    py_modules=['tips_mmseg_mmcv_lite_shim'],
    python_requires='>=3.8',
    install_requires=['mmcv-lite>=2.0,<2.2'],
    cmdclass={'build_py': BuildPyWithPth},
    zip_safe=False,
)
