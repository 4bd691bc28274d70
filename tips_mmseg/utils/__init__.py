# Importing this package changes nothing in mmengine, mmseg or torch: the
# compatibility fixes are opt-in (docs/compatibility.md, tips_mmseg.compat).
from .atomic_io import (ATOMIC_BACKEND, AtomicLocalBackend, atomic_write,
                        find_latest_checkpoint, register_atomic_backend)
from .checkpoint import (SAFE_SCHEME, TRUSTED_ENV, CorruptCheckpointError,
                         UntrustedCheckpointError,
                         allow_checkpoint_globals_everywhere,
                         checkpoint_problem, is_trusted,
                         load_from_local_safely, register_safe_loader,
                         safe_checkpoint_path, trust_checkpoint)
from .dist_compat import (has_sync_batchnorm,
                          install_cpu_distributed_support)
from .friendly_errors import check_amp_available, explain_errors
from .shift_ops import SHIFT_MODES, check_shift, shift_image

__all__ = [
    'ATOMIC_BACKEND', 'AtomicLocalBackend', 'atomic_write',
    'find_latest_checkpoint', 'register_atomic_backend', 'shift_image',
    'check_shift', 'SHIFT_MODES', 'SAFE_SCHEME', 'TRUSTED_ENV',
    'UntrustedCheckpointError', 'is_trusted', 'load_from_local_safely',
    'register_safe_loader', 'safe_checkpoint_path', 'CorruptCheckpointError',
    'checkpoint_problem', 'allow_checkpoint_globals_everywhere',
    'trust_checkpoint', 'has_sync_batchnorm',
    'install_cpu_distributed_support', 'check_amp_available',
    'explain_errors'
]
