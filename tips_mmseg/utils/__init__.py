from .checkpoint import (TRUSTED_ENV, UntrustedCheckpointError,
                         install_safe_checkpoint_loading, is_trusted,
                         load_local_checkpoint, trust_checkpoint)
from .shift import SHIFT_MODES, shift_map

install_safe_checkpoint_loading()

__all__ = [
    'shift_map', 'SHIFT_MODES', 'TRUSTED_ENV', 'UntrustedCheckpointError',
    'install_safe_checkpoint_loading', 'is_trusted', 'load_local_checkpoint',
    'trust_checkpoint'
]
