"""Helpers shared by tests: paths and running scripts in a fresh interpreter."""
import os
import importlib.util
import os.path as osp
import subprocess
import sys

import mmseg

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TEST_DATA = osp.join(REPO_ROOT, 'tests', 'data')
MMSEG_TOOLS = osp.join(osp.dirname(mmseg.__file__), '.mim', 'tools')


def load_tool(name: str):
    """A script of tools/ as a module (tools/ is not a package)."""
    path = osp.join(REPO_ROOT, 'tools', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'_tool_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_python(args, cwd, env=None, timeout=300):
    """Run ``python ARGS`` in a fresh interpreter of this environment.

    The repository goes first on PYTHONPATH so the checkout under test is the
    ``tips_mmseg`` that is imported (also by the start-up hook).
    """
    full_env = dict(os.environ)
    full_env['PYTHONPATH'] = os.pathsep.join(
        [REPO_ROOT] + [p for p in [full_env.get('PYTHONPATH')] if p])
    full_env.update(env or {})
    return subprocess.run([sys.executable] + list(args),
                          cwd=cwd,
                          env=full_env,
                          capture_output=True,
                          text=True,
                          timeout=timeout)


def enable_compat(monkeypatch, **fixes):
    """``tips_mmseg.compat.enable(**fixes)`` for one test: the replaced
    mmengine attributes are restored by ``monkeypatch`` afterwards."""
    from tips_mmseg import compat
    for owner, name in compat.replaced_attributes(**fixes):
        # vars(): a staticmethod must be put back as one.
        original = vars(owner)[name] if isinstance(owner, type) else getattr(
            owner, name)
        monkeypatch.setattr(owner, name, original)
    return compat.enable(**fixes)


def parity_heatmap(off_value, odd_value=None):
    """A consistency map (as ``consistency_grid`` returns it) over shifts
    -1..1: 100 at (0, 0), ``odd_value`` where dh + dw is odd, ``off_value``
    at the other (even) shifts."""
    import numpy as np
    axis = [-1, 0, 1]
    grid = np.full((3, 3), float(off_value))
    if odd_value is not None:
        for i, dh in enumerate(axis):
            for j, dw in enumerate(axis):
                if (dh + dw) % 2:
                    grid[i, j] = odd_value
    grid[1, 1] = 100.
    return dict(axis=axis, grid=grid.tolist(), num_images=2)
