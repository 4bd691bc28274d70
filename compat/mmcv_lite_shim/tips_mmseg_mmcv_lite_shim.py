"""Start-up shim for mmcv-lite: lets mmseg import next to it.

A distribution of its own (``tips-mmseg-mmcv-lite-shim``, this folder),
installed only with mmcv-lite (``make venv`` with the default
``EXTRAS=lite,tests``; never with full mmcv). Its
``tips_mmseg_mmcv_lite_shim.pth`` imports this module at interpreter
start-up, so it must stay cheap: it imports nothing heavy and does nothing
until ``mmcv.ops`` is imported. ``tips_mmseg`` does not import it.

Why: mmcv-lite ships mmcv without its compiled extension ``mmcv._ext``, yet
mmseg imports ``mmcv.ops`` unconditionally (``mmseg.utils``,
``mmseg.models.losses`` ...), and ``mmcv.ops`` loads ``mmcv._ext`` at import.
mmseg's own ``tools/train.py`` imports mmseg before reading any config, so a
fix in ``custom_imports`` comes too late. When ``mmcv.ops`` is about to be
imported and no real ``mmcv._ext`` exists, a placeholder module is put in
its place whose functions raise a clear error *when called*. With full mmcv
the real extension is found and nothing is changed.

What it changes (docs/compatibility.md): in every interpreter of the
environment, a meta-path finder watches for ``mmcv.ops``; with mmcv-lite,
``sys.modules['mmcv._ext']`` is the placeholder. mmseg code that tries
``import mmcv.ops`` and falls back when it fails (at build time) then gets
the op, and fails when the op is called: that is the price of importing
mmseg at all with mmcv-lite.

The placeholder's ``__spec__`` has no loader, so mmengine's
``mmcv_full_available()`` (``pkgutil.find_loader('mmcv._ext')``) stays False.
"""
import importlib.machinery
import sys
import types

_EXT_NAME = 'mmcv._ext'
_TRIGGER = 'mmcv.ops'


class MissingCompiledOpError(RuntimeError):
    """Raised when a compiled mmcv op is called with mmcv-lite installed."""


def _missing_op(name):

    def op(*args, **kwargs):
        raise MissingCompiledOpError(
            f'mmcv op `{name}` needs the compiled extension of full mmcv, '
            'but mmcv-lite (no compiled ops) is installed. Install full mmcv '
            "(`pip install 'tips-mmseg[full]'`, or mmcv>=2.0,<2.2 built for "
            'your torch) or pick a model that does not use this op.')

    op.__name__ = name
    return op


class _PlaceholderExt(types.ModuleType):
    """Stands in for ``mmcv._ext``: every op exists and fails when called."""

    is_placeholder = True

    def __getattr__(self, name):
        if name.startswith('__'):
            raise AttributeError(name)
        return _missing_op(name)


def _real_ext_exists():
    mmcv = sys.modules.get('mmcv')
    path = getattr(mmcv, '__path__', None)
    if path is None:
        return False
    spec = importlib.machinery.PathFinder.find_spec(_EXT_NAME, path)
    return spec is not None


def install_placeholder_ext():
    """Put the placeholder in ``sys.modules`` if mmcv has no ``_ext``.

    Returns:
        bool: True if the placeholder is (now) in use.
    """
    current = sys.modules.get(_EXT_NAME)
    if current is not None:
        return getattr(current, 'is_placeholder', False)
    if _real_ext_exists():
        return False
    ext = _PlaceholderExt(_EXT_NAME, 'Placeholder for mmcv._ext (mmcv-lite).')
    # A spec without a loader: importable from sys.modules, but
    # pkgutil.find_loader() reports no loader, so mmcv_full_available() is
    # False.
    ext.__spec__ = importlib.machinery.ModuleSpec(_EXT_NAME, None)
    sys.modules[_EXT_NAME] = ext
    return True


class _MmcvOpsWatcher:
    """Meta-path finder that only reacts to the first import of mmcv.ops."""

    @classmethod
    def find_spec(cls, fullname, path=None, target=None):
        if fullname == _TRIGGER:
            install_placeholder_ext()
        return None  # the normal finders do the actual import


def install():
    """Register the watcher once (idempotent)."""
    if not any(f is _MmcvOpsWatcher for f in sys.meta_path):
        sys.meta_path.insert(0, _MmcvOpsWatcher)
    if 'mmcv' in sys.modules:
        install_placeholder_ext()


install()
