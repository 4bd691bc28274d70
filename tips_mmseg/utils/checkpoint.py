"""Safe checkpoint loading on torch >= 2.6.

torch >= 2.6 loads with ``weights_only=True``: only tensors, containers and an
allow-list of globals may be unpickled, so a checkpoint cannot run code while
it loads. mmengine 0.10.7 cannot resume or ``load_from`` its own checkpoints
under that rule: they hold a few harmless non-tensor objects (the message
hub's ``HistoryBuffer``, numpy arrays, dtypes and scalars from metrics).

The design (see the README, "Checkpoint safety"):

* The harmless types mmengine/mmseg write are added to torch's allow-list
  (``torch.serialization.add_safe_globals``); every local checkpoint is still
  loaded with ``weights_only=True``. Our own runs resume; nothing can execute.
* A file that needs any other global is refused with
  :class:`UntrustedCheckpointError`, which names the globals and how to opt
  in. We do not turn on ``weights_only=False`` globally, nor set
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``: a downloaded file is untrusted.
* Opt-in per file, for files the user trusts: the environment variable
  ``TIPS_MMSEG_TRUSTED_CHECKPOINTS`` (paths of files or folders, separated by
  ``os.pathsep``) or :func:`trust_checkpoint`. Only those load with
  ``weights_only=False``.
"""
import os
import os.path as osp
import pickle
from typing import List, Set

import numpy as np
import torch
from mmengine.runner.checkpoint import CheckpointLoader

TRUSTED_ENV = 'TIPS_MMSEG_TRUSTED_CHECKPOINTS'
_trusted_paths: Set[str] = set()


class UntrustedCheckpointError(RuntimeError):
    """A checkpoint needs globals outside the allow-list, so was not loaded."""


def _numpy_globals() -> List[object]:
    """numpy objects needed to unpickle plain arrays, dtypes and scalars."""
    try:  # numpy >= 2
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core import multiarray
    names = [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype]
    # numpy >= 1.25 pickles dtypes as instances of these classes.
    dtypes = getattr(np, 'dtypes', None)
    if dtypes is not None:
        names += [
            getattr(dtypes, n) for n in dir(dtypes) if n.endswith('DType')
            and isinstance(getattr(dtypes, n), type)
        ]
    return names


def history_buffer_getattr(obj, name: str):
    """The only ``getattr`` a checkpoint may call: a HistoryBuffer statistic.

    mmengine pickles ``HistoryBuffer``'s statistics methods (min, max, mean,
    current, ...) as ``getattr(HistoryBuffer, 'min')``. A general ``getattr``
    would let a crafted file walk from any allowed object to ``os.system``, so
    this stand-in answers for ``builtins.getattr`` and allows just that.
    """
    from mmengine.logging import HistoryBuffer
    if obj is HistoryBuffer and not name.startswith('_') and callable(
            getattr(HistoryBuffer, name, None)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint (only '
        'HistoryBuffer statistics methods are).')


def safe_checkpoint_globals() -> List[object]:
    """Globals that mmengine/mmseg checkpoints may need, all data-only."""
    from mmengine.logging import HistoryBuffer
    return [HistoryBuffer, (history_buffer_getattr, 'builtins.getattr')
            ] + _numpy_globals()


def trust_checkpoint(path: str):
    """Allow ``path`` (a file, or a folder and everything below it) to load
    with ``weights_only=False``. Only for files you trust: unpickling them can
    run arbitrary code."""
    _trusted_paths.add(osp.realpath(osp.expanduser(path)))


def is_trusted(filename: str) -> bool:
    """Whether ``filename`` was trusted by :func:`trust_checkpoint` or the
    ``TIPS_MMSEG_TRUSTED_CHECKPOINTS`` environment variable."""
    real = osp.realpath(filename)
    env_paths = {
        osp.realpath(osp.expanduser(p))
        for p in os.environ.get(TRUSTED_ENV, '').split(os.pathsep) if p
    }
    for trusted in _trusted_paths | env_paths:
        if real == trusted or real.startswith(trusted.rstrip(os.sep) + os.sep):
            return True
    return False


def _unsafe_globals(filename: str) -> List[str]:
    try:
        return list(
            torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except Exception:  # not a zip checkpoint (legacy format) or unreadable
        return []


def load_from_local_safely(filename: str, map_location=None):
    """Load a local checkpoint with ``weights_only=True`` unless trusted.

    Args:
        filename (str): Path of the checkpoint.
        map_location: As for :func:`torch.load`. Defaults to None.

    Returns:
        dict: The loaded checkpoint.

    Raises:
        UntrustedCheckpointError: The file needs globals outside the
            allow-list and is not trusted.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    if is_trusted(filename):
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    try:
        return torch.load(
            filename, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as error:
        needed = _unsafe_globals(filename)
        what = ', '.join(needed) if needed else str(error).splitlines()[0]
        raise UntrustedCheckpointError(
            f'Refused to load checkpoint {filename!r}: it needs objects '
            f'outside the safe allow-list ({what}), and unpickling them could '
            'run code from the file. Nothing from it was executed. If you '
            'trust this file, allow it explicitly: set '
            f'{TRUSTED_ENV}={osp.abspath(filename)} (files or folders, '
            f'separated by "{os.pathsep}") or call '
            'tips_mmseg.utils.trust_checkpoint(path) before loading.'
        ) from None


def install_safe_checkpoint_loading():
    """Allow-list mmengine's harmless types and route local files through
    :func:`load_from_local_safely` (idempotent)."""
    torch.serialization.add_safe_globals(safe_checkpoint_globals())
    CheckpointLoader.register_scheme(
        prefixes='', loader=load_from_local_safely, force=True)
