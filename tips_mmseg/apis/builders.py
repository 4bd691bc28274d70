"""Building a segmentor and an evaluation dataloader from a config, once.

Shared by the analysis tools (shift consistency, MSB, robustness), which run
a config's model outside a training Runner.
"""
import copy
import logging
from typing import Callable, Optional

import torch
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.model.utils import revert_sync_batchnorm
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint

from mmseg.registry import MODELS

from ..datasets.label_checks import add_label_checks, check_num_classes
from ..utils.checkpoint import safe_checkpoint_path


def build_segmentor(cfg: Config,
                    checkpoint: Optional[str] = None,
                    device: str = 'cpu') -> torch.nn.Module:
    """Build ``cfg.model`` in eval mode, with trained weights if given.

    SyncBN is reverted to BN, as mmengine's Runner does without a launcher,
    since SyncBN cannot run outside a process group. A local checkpoint loads
    through mmengine with tips-mmseg's safe loader (``tips-local://``, see
    :func:`~tips_mmseg.utils.safe_checkpoint_path`).

    Args:
        cfg (Config): mmseg config with ``model``.
        checkpoint (str, optional): Weights to load. None initialises the
            model as its config says (``init_weights``; a ``pretrained`` URL
            would be downloaded - switch it off with
            ``model.pretrained=None``). Defaults to None.
        device (str): Defaults to ``'cpu'``.

    Returns:
        nn.Module: The segmentor, on ``device``, in eval mode.
    """
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    model = revert_sync_batchnorm(MODELS.build(copy.deepcopy(cfg.model)))
    if checkpoint:
        load_checkpoint(model, safe_checkpoint_path(checkpoint),
                        map_location='cpu')
    else:
        # init_weights logs one INFO entry per parameter: keep warnings only.
        logger = MMLogger.get_current_instance()
        level = logger.level
        logger.setLevel(logging.WARNING)
        try:
            model.init_weights()
        finally:
            logger.setLevel(level)
    return model.to(device).eval()


def build_eval_dataloader(
        cfg: Config,
        split: str = 'test',
        num_images: Optional[int] = None,
        edit_pipeline: Optional[Callable[[list], list]] = None,
        check_labels: bool = True) -> torch.utils.data.DataLoader:
    """Build ``cfg.<split>_dataloader``, optionally a subset or re-piped.

    Args:
        cfg (Config): mmseg config.
        split (str): 'test' or 'val'; falls back to the other one when the
            config lacks it. Defaults to 'test'.
        num_images (int, optional): Use only the first N images.
            Defaults to None (all).
        edit_pipeline (callable, optional): Maps the dataset's pipeline (a
            list of transform configs) to the one to use, e.g. with a
            corruption inserted. Defaults to None.
        check_labels (bool): Refuse, naming the file, a label map with
            values outside the model's classes or of another size than its
            image (:class:`CheckSegLabels` after ``LoadAnnotations``), and a
            model whose class count differs from the dataset's.
            Defaults to True.

    Returns:
        DataLoader: The dataloader (``num_workers`` 0 unless set).
    """
    other = 'val' if split == 'test' else 'test'
    loader_cfg = cfg.get(f'{split}_dataloader') or cfg.get(
        f'{other}_dataloader')
    if not loader_cfg:
        raise ValueError('The config has neither a test_dataloader nor a '
                         'val_dataloader to take images from.')
    loader_cfg = copy.deepcopy(loader_cfg)
    loader_cfg.setdefault('num_workers', 0)
    dataset_cfg = loader_cfg['dataset']
    if num_images is not None:
        # mmengine's BaseDataset keeps the first N samples.
        dataset_cfg['indices'] = int(num_images)
    if edit_pipeline is not None:
        if 'pipeline' not in dataset_cfg:
            raise ValueError(
                f'{split}_dataloader.dataset has no `pipeline` (a dataset '
                'wrapper?); this evaluation needs a plain mmseg dataset.')
        dataset_cfg['pipeline'] = edit_pipeline(dataset_cfg['pipeline'])
    if check_labels:
        # Checked on a config holding just this split and the model.
        checked = Config(dict(model=cfg.get('model'),
                              test_dataloader=loader_cfg))
        check_num_classes(checked)
        add_label_checks(checked)
        loader_cfg = checked.test_dataloader
    return Runner.build_dataloader(loader_cfg)
