from .toy_shapes import (TOY_CLASSES, ToyShapesDataset, render_toy_sample,
                         write_toy_dataset)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'ToyShapesDataset', 'TOY_CLASSES', 'render_toy_sample',
    'write_toy_dataset'
]
