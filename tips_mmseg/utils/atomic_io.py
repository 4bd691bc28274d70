"""Checkpoints are never left half-written: write, then rename.

mmengine writes checkpoints in place (``LocalBackend.put``) and the
``last_checkpoint`` pointer with a plain ``open(..., 'w')``. A run killed
(SIGKILL, OOM, pre-emption) in the middle leaves a truncated ``.pth`` or an
empty pointer, and ``--resume`` then fails or silently starts from scratch.

Here (:class:`AtomicLocalBackend`, a file backend registered in mmengine's
``fileio`` under the name ``'tips_atomic_local'`` when
:func:`register_atomic_backend` is called, e.g. by ``CheckpointSafetyHook``)
local writes go to a temporary file in the same folder, are flushed to
disk, and replace the target with ``os.replace`` (atomic on POSIX and
Windows), so a reader sees the old file or the new one, never a part.
Everything else stays as mmengine does it: a new file gets the mode the
umask gives (``open`` would), an existing file keeps its mode, a symlink is
written through (its target is replaced, the link stays), and a file with
other hard links or another owner is written in place as before.

Resuming (:func:`find_latest_checkpoint`) honours the ``last_checkpoint``
pointer as mmengine does (a remote path is returned as it is), and falls
back past a missing, stale or corrupt local checkpoint to the newest one
that loads, saying so. (mmengine writes the pointer itself with a plain
``open``; an interrupted write of it is one of the cases the fallback
handles.)

Nothing here changes mmengine: the backend is an added name, and
``find_latest_checkpoint`` is used by ``CheckpointSafetyHook`` for the
runner that has it.
"""
import os
import os.path as osp
import re
import uuid
from typing import List, Optional, Union

from mmengine.fileio.backends import LocalBackend, register_backend
from mmengine.logging import print_log

_CHECKPOINT_NAME = re.compile(r'^(iter|epoch)_(\d+)\.pth$')
#: Name of :class:`AtomicLocalBackend` in mmengine's file backends, for
#: ``backend_args=dict(backend=ATOMIC_BACKEND)``.
ATOMIC_BACKEND = 'tips_atomic_local'


def _write_in_place(path: str) -> bool:
    """Whether a rename would change more than the content of ``path``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    # A rename would cut other hard links off, or hand the file to us.
    return st.st_nlink > 1 or (hasattr(os, 'getuid')
                               and st.st_uid != os.getuid())


def atomic_write(data: Union[bytes, str], filepath: str,
                 encoding: str = 'utf-8'):
    """Write ``data`` to ``filepath`` through a temporary file and a rename.

    The result is what ``open(filepath, 'wb').write(data)`` gives (mode from
    the umask for a new file, the old mode for an existing one, symlinks
    written through), except that a reader never sees a partial file.

    Args:
        data (bytes | str): Content; str is encoded with ``encoding``.
        filepath (str): Target path (its folder is created).
        encoding (str): Encoding of str data. Defaults to 'utf-8'.
    """
    if isinstance(data, str):
        data = data.encode(encoding)
    # Write through symlinks, as open() does: replace the link's target.
    target = osp.realpath(filepath) if osp.islink(filepath) else filepath
    folder = osp.dirname(osp.abspath(target))
    os.makedirs(folder, exist_ok=True)
    if _write_in_place(target):
        with open(target, 'wb') as f:
            f.write(data)
        return
    tmp_path = osp.join(
        folder, f'.{osp.basename(target)}.{uuid.uuid4().hex[:8]}.tmp')
    try:
        old_mode = os.stat(target).st_mode & 0o7777
    except FileNotFoundError:
        old_mode = None
    # 0o666 filtered by the umask (and default ACLs), as open() creates files.
    fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, 'wb') as f:
            if old_mode is not None:
                os.chmod(tmp_path, old_mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, target)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise


class AtomicLocalBackend(LocalBackend):
    """mmengine's ``LocalBackend`` whose writes go through
    :func:`atomic_write` (reads, listing and removal are mmengine's)."""

    def put(self, obj: bytes, filepath) -> None:
        atomic_write(obj, str(filepath))

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write(obj, str(filepath), encoding)


def register_atomic_backend() -> str:
    """Add :class:`AtomicLocalBackend` to mmengine's file backends under
    :data:`ATOMIC_BACKEND` (idempotent; a new name, no prefix: the backend
    of every existing path stays mmengine's).

    Returns:
        str: The name to put in ``backend_args=dict(backend=...)``.
    """
    from mmengine.fileio.backends.registry_utils import backends
    if backends.get(ATOMIC_BACKEND) is not AtomicLocalBackend:
        register_backend(ATOMIC_BACKEND, AtomicLocalBackend, force=True)
    return ATOMIC_BACKEND


def _is_remote(path: str) -> bool:
    return '://' in path or re.match(r'^[\w-]+:[\w-]*://', path) is not None


def _numbered_checkpoints(path: str) -> List[str]:
    """``iter_N.pth`` / ``epoch_N.pth`` in ``path``, newest (largest N)
    first; temporary files of an interrupted write never match."""
    found = []
    if osp.isdir(path):
        for name in os.listdir(path):
            match = _CHECKPOINT_NAME.match(name)
            if match:
                found.append((int(match.group(2)), osp.join(path, name)))
    return [p for _, p in sorted(found, reverse=True)]


def find_latest_checkpoint(path: str) -> Optional[str]:
    """The checkpoint ``--resume`` should load from work dir ``path``.

    As mmengine: the file the ``last_checkpoint`` pointer names (a remote
    path, e.g. ``s3://...`` of an ``out_dir`` set-up, is returned as it is).
    Beyond mmengine: when the pointer is missing, empty, names a local file
    that is gone, or names one that does not load (truncated, damaged), the
    newest loadable ``iter_N.pth`` / ``epoch_N.pth`` is used, and the log
    says which and why.

    Args:
        path (str): The work dir.

    Returns:
        str | None: The checkpoint, or None if there is none.

    Raises:
        RuntimeError: Checkpoints exist but none of them loads.
    """
    from .checkpoint import checkpoint_problem
    pointer = osp.join(path, 'last_checkpoint')
    named = None
    if osp.exists(pointer):
        with open(pointer) as f:
            named = f.read().strip() or None
    if named and _is_remote(named):
        return named
    candidates = _numbered_checkpoints(path)
    if named and osp.isfile(named):
        candidates = [named] + [
            c for c in candidates if osp.realpath(c) != osp.realpath(named)]
    if not candidates:
        print_log(f'Did not find a checkpoint to resume in {path}.',
                  logger='current')
        return None
    skipped = []
    for candidate in candidates:
        problem = checkpoint_problem(candidate)
        if problem is None:
            break
        skipped.append(f'{candidate} ({problem})')
    else:
        raise RuntimeError(
            f'None of the checkpoints in {path} loads: {"; ".join(skipped)}. '
            'Resume from another copy with --cfg-options load_from=PATH '
            'resume=True, or start afresh without --resume.')
    if skipped:
        print_log(
            f'Resuming from {candidate}, the newest checkpoint that loads: '
            f'skipped {"; ".join(skipped)}.', logger='current',
            level=30)
    elif candidate != named:
        why = (f'names {named}, which does not exist' if named else
               'is missing or empty')
        print_log(f'last_checkpoint {why}; resuming from the newest '
                  f'complete checkpoint {candidate}.', logger='current')
    return candidate
