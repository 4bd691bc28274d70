"""Safe loading, resume fallback and atomic writes of checkpoints, per run."""
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log
from mmseg.registry import HOOKS

from ...utils.atomic_io import find_latest_checkpoint, register_atomic_backend
from ...utils.checkpoint import safe_checkpoint_path


@HOOKS.register_module()
class CheckpointSafetyHook(Hook):
    """Checkpoint fixes for the runner that has this hook (and no other).

    Add it to a config as a default hook, so that configs inheriting it keep
    it whatever their ``custom_hooks``::

        default_hooks = dict(
            checkpoint_safety=dict(type='CheckpointSafetyHook'))

    At ``before_run`` (before mmengine loads or resumes a checkpoint) it

    * ``resume_fallback``: with ``resume=True`` and no ``load_from``, picks
      the checkpoint to resume with :func:`find_latest_checkpoint`: the one
      ``last_checkpoint`` names, or, when that pointer is missing, empty,
      names a file that is gone or one that does not load, the newest
      ``iter_N.pth`` / ``epoch_N.pth`` that loads (mmengine would take the
      pointer as it is);
    * ``safe_loading``: loads ``load_from`` / the resumed file through
      ``tips-local://`` (``load_from_local_safely``): on torch >= 2.6 the
      harmless types of mmengine/mmseg checkpoints are allowed for that
      load, anything else is refused by name, a damaged file is reported by
      path (mmengine's loader cannot resume its own checkpoints there);
    * ``atomic_writes``: makes the runner's ``CheckpointHook`` write through
      ``AtomicLocalBackend`` (write, then rename), when its ``backend_args``
      / ``file_client_args`` are unset and ``out_dir`` is local.

    Args:
        safe_loading (bool): Defaults to True.
        resume_fallback (bool): Defaults to True.
        atomic_writes (bool): Defaults to True.
    """

    priority = 'VERY_HIGH'

    def __init__(self, safe_loading: bool = True, resume_fallback: bool = True,
                 atomic_writes: bool = True):
        self.safe_loading = safe_loading
        self.resume_fallback = resume_fallback
        self.atomic_writes = atomic_writes

    def before_run(self, runner) -> None:
        # mmengine's Runner.load_or_resume reads these two attributes right
        # after before_run (train and test alike).
        if (self.resume_fallback and runner._resume
                and runner._load_from is None):
            found = find_latest_checkpoint(runner.work_dir)
            if found is not None:
                runner._load_from = found
        if self.safe_loading and runner._load_from is not None:
            runner._load_from = safe_checkpoint_path(runner._load_from)
        if self.atomic_writes:
            self._write_atomically(runner)

    @staticmethod
    def _write_atomically(runner):
        for hook in runner.hooks:
            if not isinstance(hook, CheckpointHook):
                continue
            out_dir = hook.out_dir
            atomic = dict(backend=register_atomic_backend())
            if hook.backend_args == atomic:
                continue  # set by an earlier run of the same runner
            if (hook.backend_args is not None
                    or hook.file_client_args is not None
                    or (out_dir is not None and '://' in str(out_dir))):
                print_log(
                    'CheckpointSafetyHook: CheckpointHook has its own '
                    'backend or a remote out_dir; its writes are left as '
                    'they are.', logger='current')
                continue
            hook.backend_args = atomic
