from .corruption_ops import CORRUPTIONS, apply_corruption
from .corruptions import ImageCorruption, per_image_seed

__all__ = [
    'CORRUPTIONS', 'apply_corruption', 'ImageCorruption', 'per_image_seed'
]
