"""Opt-in, process-wide fixes of mmengine behaviour (docs/compatibility.md).

``import tips_mmseg`` registers modules and changes nothing else. The fixes a
config can select are registered components (``CheckpointSafetyHook``, the
``CheckSegLabels`` transform). The two that act before any config-built
component exists are here, for the process that asks for them:

* CPU distributed launch
  (:func:`~tips_mmseg.utils.install_cpu_distributed_support`):
  mmengine's ``_init_dist_*`` launchers, ``MMDistributedDataParallel`` and
  ``Runner.wrap_model`` work on a machine without CUDA (gloo, no
  ``device_ids``, SyncBN reverted). With CUDA they run mmengine's code.
* Dataset path checks (:func:`~tips_mmseg.datasets.install_dataset_checks`):
  ``Runner.build_dataloader`` names a missing data root, split file or image
  folder, or an empty split, of mmseg segmentation datasets.

Our ``tools/train.py`` and ``tools/test.py`` call :func:`enable`; so may a
user's own script::

    import tips_mmseg.compat
    tips_mmseg.compat.enable()
"""
from typing import List

#: What :func:`enable` can switch on.
FIXES = ('cpu_distributed', 'dataset_checks')


def enable(cpu_distributed: bool = True,
           dataset_checks: bool = True) -> List[str]:
    """Install the chosen fixes in this process (idempotent).

    Args:
        cpu_distributed (bool): Distributed launch and DDP without CUDA.
            Defaults to True.
        dataset_checks (bool): Clear errors for missing paths and empty
            splits when a Runner builds a dataloader. Defaults to True.

    Returns:
        list[str]: The fixes now installed by this call.
    """
    enabled = []
    if cpu_distributed:
        from .utils.dist_compat import install_cpu_distributed_support
        install_cpu_distributed_support()
        enabled.append('cpu_distributed')
    if dataset_checks:
        from .datasets.data_checks import install_dataset_checks
        install_dataset_checks()
        enabled.append('dataset_checks')
    return enabled


def replaced_attributes(cpu_distributed: bool = True,
                        dataset_checks: bool = True) -> list:
    """The ``(owner, name)`` attributes of mmengine that :func:`enable`
    replaces with wrappers (to list them, or to restore them in tests).

    Returns:
        list[tuple]: (module or class, attribute name) pairs.
    """
    import mmengine.dist.utils as dist_utils
    from mmengine.model import MMDistributedDataParallel
    from mmengine.runner import Runner
    found = []
    if cpu_distributed:
        found += [(dist_utils, name) for name in (
            '_init_dist_pytorch', '_init_dist_slurm', '_init_dist_mpi')]
        found += [(MMDistributedDataParallel, '__init__'),
                  (Runner, 'wrap_model')]
    if dataset_checks:
        found.append((Runner, 'build_dataloader'))
    return found


def add_checkpoint_safety_hook(cfg) -> bool:
    """Add ``CheckpointSafetyHook`` to ``cfg.default_hooks`` unless the
    config has one (in ``default_hooks`` or ``custom_hooks``).

    Args:
        cfg (mmengine.Config): A runner config, edited in place.

    Returns:
        bool: Whether the hook was added.
    """
    default_hooks = dict(cfg.get('default_hooks') or {})
    hooks = [h for h in default_hooks.values() if h is not None] + list(
        cfg.get('custom_hooks') or [])
    if any(_hook_name(h) == 'CheckpointSafetyHook' for h in hooks):
        return False
    default_hooks['checkpoint_safety'] = dict(type='CheckpointSafetyHook')
    cfg.default_hooks = default_hooks
    return True


def _hook_name(hook) -> str:
    """Class name of a hook given as a config dict or an object."""
    kind = hook.get('type', '') if isinstance(hook, dict) else type(hook)
    if isinstance(kind, type):
        return kind.__name__
    return str(kind).split('.')[-1]


def is_missing_compiled_op(error: BaseException) -> bool:
    """Whether ``error``, or an error it was raised from, is the mmcv-lite
    shim's ``MissingCompiledOpError`` (a compiled mmcv op called without
    full mmcv; docs/compatibility.md).

    Told by the class name, so that this works whether or not the shim (a
    separate, optional distribution) is installed.
    """
    seen = set()
    while error is not None and id(error) not in seen:
        if type(error).__name__ == 'MissingCompiledOpError':
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False
