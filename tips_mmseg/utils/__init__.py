from .atomic_io import (atomic_write, find_latest_checkpoint,
                        install_atomic_checkpointing)
from .checkpoint import (TRUSTED_ENV, CorruptCheckpointError,
                         allow_checkpoint_globals_everywhere,
                         UntrustedCheckpointError, checkpoint_problem,
                         install_safe_checkpoint_loading, is_trusted,
                         load_from_local_safely, trust_checkpoint)
from .dist_compat import (has_sync_batchnorm,
                          install_cpu_distributed_support)
from .friendly_errors import check_amp_available, explain_errors
from .shift_ops import SHIFT_MODES, check_shift, shift_image

install_safe_checkpoint_loading()
install_atomic_checkpointing()
install_cpu_distributed_support()  # acts only in processes without CUDA

__all__ = [
    'atomic_write', 'find_latest_checkpoint', 'install_atomic_checkpointing',
    'shift_image', 'check_shift', 'SHIFT_MODES', 'TRUSTED_ENV', 'UntrustedCheckpointError',
    'install_safe_checkpoint_loading', 'is_trusted', 'load_from_local_safely',
    'CorruptCheckpointError', 'checkpoint_problem',
    'allow_checkpoint_globals_everywhere',
    'trust_checkpoint', 'has_sync_batchnorm',
    'install_cpu_distributed_support', 'check_amp_available',
    'explain_errors'
]
