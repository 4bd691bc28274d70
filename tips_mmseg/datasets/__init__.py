from .toy_shapes import (TOY_CLASSES, ToyShapesDataset, render_toy_sample,
                         write_toy_dataset)

__all__ = [
    'ToyShapesDataset', 'TOY_CLASSES', 'render_toy_sample',
    'write_toy_dataset'
]
