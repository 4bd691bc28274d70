from .data_checks import (check_dataset_paths, empty_split_error,
                          install_dataset_checks)
from .label_checks import (CheckSegLabels, ConfigCheckError,
                           add_label_checks, check_num_classes,
                           with_label_checks)
from .toy_shapes import (TOY_CLASSES, ToyShapesDataset, render_toy_sample,
                         write_toy_dataset)
from .transforms import *  # noqa: F401,F403

__all__ = [
    'ToyShapesDataset', 'TOY_CLASSES', 'render_toy_sample',
    'write_toy_dataset', 'check_dataset_paths', 'empty_split_error',
    'install_dataset_checks', 'CheckSegLabels', 'ConfigCheckError',
    'add_label_checks', 'check_num_classes', 'with_label_checks'
]
