from .data_checks import (check_dataset_paths, empty_split_error,
                          install_dataset_checks)
from .toy_shapes import (TOY_CLASSES, ToyShapesDataset, render_toy_sample,
                         write_toy_dataset)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'ToyShapesDataset', 'TOY_CLASSES', 'render_toy_sample',
    'write_toy_dataset', 'check_dataset_paths', 'empty_split_error',
    'install_dataset_checks'
]

install_dataset_checks()  # clear errors for missing/empty data, any dataset
