"""Checkpoints are never left half-written: write, then rename.

mmengine writes checkpoints in place (``LocalBackend.put``) and the
``last_checkpoint`` pointer with a plain ``open(..., 'w')``. A run killed
(SIGKILL, OOM, pre-emption) in the middle leaves a truncated ``.pth`` or an
empty pointer, and ``--resume`` then fails or silently starts from scratch.

Here local writes go to a temporary file in the same folder, are flushed to
disk, and replace the target with ``os.replace`` (atomic on POSIX and
Windows), so a reader sees the old file or the new one, never a part. Resuming
tolerates a missing or stale pointer by falling back to the newest complete
``iter_*.pth`` / ``epoch_*.pth`` in the work dir.
"""
import os
import os.path as osp
import re
import tempfile
from typing import Optional, Union

from mmengine.fileio.backends import LocalBackend
from mmengine.logging import print_log

_CHECKPOINT_NAME = re.compile(r'^(iter|epoch)_(\d+)\.pth$')


def atomic_write(data: Union[bytes, str], filepath: str,
                 encoding: str = 'utf-8'):
    """Write ``data`` to ``filepath`` through a temporary file and a rename.

    Args:
        data (bytes | str): Content; str is encoded with ``encoding``.
        filepath (str): Target path (its folder is created).
        encoding (str): Encoding of str data. Defaults to 'utf-8'.
    """
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    if isinstance(data, str):
        data = data.encode(encoding)
    fd, tmp_path = tempfile.mkstemp(
        dir=folder, prefix='.' + osp.basename(filepath) + '.', suffix='.tmp')
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, filepath)
    except BaseException:
        if osp.exists(tmp_path):
            os.remove(tmp_path)
        raise


def _atomic_put(self, obj: bytes, filepath) -> None:
    atomic_write(obj, str(filepath))


def _atomic_put_text(self, obj: str, filepath, encoding: str = 'utf-8'):
    atomic_write(obj, str(filepath), encoding)


def find_latest_checkpoint(path: str) -> Optional[str]:
    """Latest complete checkpoint in ``path`` for ``--resume``.

    The ``last_checkpoint`` pointer if it names an existing file, else the
    ``iter_N.pth`` / ``epoch_N.pth`` with the largest N (temporary files of an
    interrupted write are never considered).
    """
    pointer = osp.join(path, 'last_checkpoint')
    if osp.exists(pointer):
        with open(pointer) as f:
            named = f.read().strip()
        if named and osp.isfile(named):
            return named
    candidates = []
    if osp.isdir(path):
        for name in os.listdir(path):
            match = _CHECKPOINT_NAME.match(name)
            if match:
                candidates.append((int(match.group(2)), osp.join(path, name)))
    if not candidates:
        print_log(f'Did not find a checkpoint to resume in {path}.',
                  logger='current')
        return None
    latest = max(candidates)[1]
    print_log(f'last_checkpoint missing or stale; resuming from the newest '
              f'complete checkpoint {latest}.', logger='current')
    return latest


class _AtomicLastCheckpointFile:
    """``open`` stand-in for CheckpointHook: writes of the pointer file go
    through :func:`atomic_write`; everything else is the builtin ``open``."""

    def __call__(self, file, mode='r', *args, **kwargs):
        if mode == 'w' and osp.basename(str(file)) == 'last_checkpoint':
            return _AtomicTextWriter(str(file))
        return open(file, mode, *args, **kwargs)


class _AtomicTextWriter:

    def __init__(self, path: str):
        self.path, self.parts = path, []

    def write(self, text: str):
        self.parts.append(text)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc_info):
        if exc_type is None:
            atomic_write(''.join(self.parts), self.path)


def install_atomic_checkpointing():
    """Make mmengine's local checkpoint writes atomic (idempotent)."""
    from mmengine.hooks import checkpoint_hook
    from mmengine.runner import runner
    LocalBackend.put = _atomic_put
    LocalBackend.put_text = _atomic_put_text
    checkpoint_hook.open = _AtomicLastCheckpointFile()
    runner.find_latest_checkpoint = find_latest_checkpoint
