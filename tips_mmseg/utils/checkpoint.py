"""Safe checkpoint loading on torch >= 2.6, and clear errors for bad files.

torch >= 2.6 loads with ``weights_only=True``: only tensors, containers and an
allow-list of globals may be unpickled, so a checkpoint cannot run code while
it loads. mmengine 0.10.7 cannot resume or ``load_from`` its own checkpoints
under that rule: they hold a few harmless non-tensor objects (the message
hub's ``HistoryBuffer``, numpy arrays, dtypes and scalars from metrics).

The design (docs/compatibility.md, "Checkpoint loading"):

* :func:`load_from_local_safely` loads with ``weights_only=True`` and the
  harmless types mmengine/mmseg write allowed *for that load only*
  (``torch.serialization.safe_globals``): ``torch.load`` elsewhere in the
  process keeps torch's own allow-list. Our own runs resume; nothing can
  execute. mmengine reaches it through the checkpoint scheme
  ``tips-local://`` (:func:`safe_checkpoint_path` prefixes a local path and
  registers the scheme on first use; ``CheckpointSafetyHook`` does that for
  a runner's ``load_from`` / resume). mmengine's own loader of plain paths
  is left as it is.
* A file that needs any other global is refused with
  :class:`UntrustedCheckpointError`, a ``pickle.UnpicklingError`` as torch
  raises for it, which names the globals and how to opt in. We do not turn on
  ``weights_only=False`` globally, nor set
  ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD``: a downloaded file is untrusted.
* Opt-in per file, for files the user trusts: the environment variable
  ``TIPS_MMSEG_TRUSTED_CHECKPOINTS`` (paths of files or folders, separated by
  ``os.pathsep``) or :func:`trust_checkpoint`. Only those load with
  ``weights_only=False``.
* A truncated or garbage file raises :class:`CorruptCheckpointError` naming
  the path (an instance of the type torch raised as well, so existing
  ``except`` clauses still catch it).
"""
import os
import os.path as osp
import pickle
import zipfile
from typing import Dict, List, Optional, Set

import numpy as np
import torch
from mmengine.runner.checkpoint import CheckpointLoader

TRUSTED_ENV = 'TIPS_MMSEG_TRUSTED_CHECKPOINTS'
#: Prefix of the checkpoint scheme that loads a local file by these rules.
SAFE_SCHEME = 'tips-local://'
_trusted_paths: Set[str] = set()
# torch.save's legacy (non-zip) format starts with a pickled magic number.
_LEGACY_MAGIC = b'\x80\x02\x8a\x0a'


class UntrustedCheckpointError(pickle.UnpicklingError):
    """A checkpoint needs globals outside the allow-list, so was not loaded.

    A ``pickle.UnpicklingError``, which torch raises for such files too.
    """


class CorruptCheckpointError(RuntimeError):
    """A checkpoint file is truncated, damaged or not a checkpoint.

    Raised as a subclass of this and of the error torch gave, so callers'
    ``except`` clauses for torch's error still apply.
    """

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ''


_corrupt_classes: Dict[type, type] = {}


def _corrupt_error(message: str, cause: BaseException) -> Exception:
    base = type(cause)
    if isinstance(cause, CorruptCheckpointError) or not issubclass(
            base, Exception):
        return CorruptCheckpointError(message)
    if base not in _corrupt_classes:
        try:
            cls = type('CorruptCheckpointError',
                       (CorruptCheckpointError, base), {})
            cls.__module__ = __name__
        except TypeError:  # incompatible layouts (e.g. OSError)
            cls = CorruptCheckpointError
        _corrupt_classes[base] = cls
    return _corrupt_classes[base](message)


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


def _allowed_for_this_load(safe: List[object]):
    """Allow ``safe`` during one load, leaving what the user had allowed
    process-wide in place afterwards (torch's ``safe_globals`` context
    removes its globals on exit even if they had been added before)."""
    before = set(torch.serialization.get_safe_globals())
    return torch.serialization.safe_globals(
        [g for g in safe if g not in before])


def _unsafe_globals(filename: str) -> List[str]:
    try:
        return list(
            torch.serialization.get_unsafe_globals_in_checkpoint(filename))
    except Exception:  # not a zip checkpoint (legacy format) or unreadable
        return []


def _structure_problem(filename: str) -> Optional[str]:
    """What is wrong with the file's container, or None if it looks whole
    (a zip checkpoint whose records pass their CRC, or the legacy format)."""
    try:
        if osp.getsize(filename) == 0:
            return 'the file is empty'
        with open(filename, 'rb') as f:
            head = f.read(4)
        if zipfile.is_zipfile(filename):
            with zipfile.ZipFile(filename) as archive:
                names = archive.namelist()
                damaged = archive.testzip()
            if damaged is not None:
                return f'record {damaged} is damaged'
            if not any(n == 'data.pkl' or n.endswith('/data.pkl')
                       for n in names):
                return 'a zip archive, but not one torch.save wrote'
            return None
    except (OSError, zipfile.BadZipFile, EOFError) as err:
        return f'unreadable: {err}'
    if head.startswith(b'PK'):
        return 'truncated: the end of its zip archive is missing'
    if head == _LEGACY_MAGIC:
        return None
    return 'not a PyTorch checkpoint (neither a zip archive nor a pickle)'


def checkpoint_problem(filename: str) -> Optional[str]:
    """Why ``filename`` would not load as a checkpoint, or None if it would.

    Reads the whole file once (a CRC check of every record); a file refused
    only for untrusted content counts as loadable (trust is decided when it
    is loaded).

    Args:
        filename (str): Path of a local checkpoint.

    Returns:
        str | None: A short reason, or None.
    """
    problem = _structure_problem(filename)
    if problem is not None:
        return problem
    with open(filename, 'rb') as f:
        legacy = f.read(4) == _LEGACY_MAGIC
    if legacy:  # no cheap check: load it
        try:
            load_from_local_safely(filename, map_location='cpu')
        except UntrustedCheckpointError:
            return None
        except Exception as err:
            return f'{type(err).__name__}: {err}'.splitlines()[0]
    return None


def _refusal(filename: str, error: pickle.UnpicklingError) -> Exception:
    needed = _unsafe_globals(filename)
    text = str(error)
    if not needed and 'global' not in text.lower() and (
            'not allowed' not in text):
        return None  # not about globals: a damaged pickle
    what = ', '.join(needed) if needed else text.splitlines()[0]
    return UntrustedCheckpointError(
        f'Refused to load checkpoint {filename!r}: it needs objects '
        f'outside the safe allow-list ({what}), and unpickling them could '
        'run code from the file. Nothing from it was executed. If you '
        'trust this file, allow it explicitly: set '
        f'{TRUSTED_ENV}={osp.abspath(filename)} (files or folders, '
        f'separated by "{os.pathsep}") or call '
        'tips_mmseg.utils.trust_checkpoint(path) before loading.')


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
        CorruptCheckpointError: The file is truncated, damaged or not a
            checkpoint.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'{filename} can not be found.')
    trusted = is_trusted(filename)
    try:
        if trusted:
            return torch.load(
                filename, map_location=map_location, weights_only=False)
        with _allowed_for_this_load(safe_checkpoint_globals()):
            return torch.load(
                filename, map_location=map_location, weights_only=True)
    except Exception as error:
        if isinstance(error, pickle.UnpicklingError) and not trusted:
            refusal = _refusal(filename, error)
            if refusal is not None:
                raise refusal from None
        problem = _structure_problem(filename)
        with open(filename, 'rb') as f:
            legacy = f.read(4) == _LEGACY_MAGIC
        if problem is None and not (legacy and isinstance(
                error, (EOFError, pickle.UnpicklingError))):
            raise  # a whole file: e.g. a CUDA tensor with map_location=None
        problem = problem or 'the pickled data is cut short or damaged'
        detail = (str(error).splitlines() or [''])[0][:200]
        raise _corrupt_error(
            f'Checkpoint {filename!r} does not load: {problem} '
            f'({type(error).__name__}: {detail}). '
            'It was probably cut short by an interrupted write or copy, or '
            'is not a checkpoint: copy or save it again, or use another one '
            '(tools/train.py --resume skips it and takes the newest '
            'checkpoint that loads).', error) from error


def load_from_tips_local(filename: str, map_location=None):
    """mmengine ``CheckpointLoader`` entry for ``tips-local://PATH``:
    :func:`load_from_local_safely` of PATH. (mmengine logs the name after
    ``load_from_``: "by tips_local backend".)"""
    return load_from_local_safely(filename[len(SAFE_SCHEME):], map_location)


def register_safe_loader():
    """Add the ``tips-local://`` scheme to mmengine's ``CheckpointLoader``
    (idempotent). Only that prefix is added: paths without it keep
    mmengine's loaders."""
    probe = SAFE_SCHEME + 'probe.pth'
    if CheckpointLoader._get_checkpoint_loader(probe) is not \
            load_from_tips_local:
        CheckpointLoader.register_scheme(
            prefixes=SAFE_SCHEME, loader=load_from_tips_local, force=True)


def safe_checkpoint_path(filename: str) -> str:
    """``filename`` in the form mmengine loads with
    :func:`load_from_local_safely` (``tips-local://`` + the path), for
    ``load_checkpoint``, ``Runner.load_checkpoint`` or a ``load_from``.

    A URL or remote path (anything with ``://``) is returned unchanged, as
    mmengine's loader for it decides. Registers the scheme on first use.

    Args:
        filename (str): Path of a checkpoint.

    Returns:
        str: The path to hand to mmengine.
    """
    filename = str(filename)
    if '://' in filename:
        return filename
    register_safe_loader()
    return SAFE_SCHEME + filename


def allow_checkpoint_globals_everywhere():
    """Opt in: let *every* ``torch.load(weights_only=True)`` of the process
    accept what mmengine checkpoints hold (HistoryBuffer, numpy arrays,
    dtypes, scalars), e.g. to read them with plain ``torch.load`` in a
    notebook. Not done on import: it widens torch's allow-list for all code.
    """
    torch.serialization.add_safe_globals(safe_checkpoint_globals())
