"""mIoU under image corruptions and adversarial attacks (docs/evaluation.md).

:func:`evaluate_robustness` builds the model and the test dataloader from an
mmseg config and measures mIoU with the config's test evaluator (mmseg's
IoUMetric) on clean images, on every corruption x severity (the
:class:`~tips_mmseg.datasets.transforms.ImageCorruption` transform inserted
after ``LoadImageFromFile``) and under every attack. ``tools/robustness.py``
wraps it; :func:`format_robustness_table` presents the result as a table,
:func:`tips_mmseg.visualization.plot_corruption_curves` as a figure.
"""
import contextlib
import copy
import logging
import warnings
from typing import Callable, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmengine.registry import init_default_scope
from mmengine.utils import ProgressBar

from tips_mmseg.datasets.transforms.corruption_ops import (CORRUPTIONS,
                                                           check_corruption)
from .attacks import build_attack, check_attack
from .builders import build_eval_dataloader, build_segmentor

DEFAULT_SEVERITIES = (1, 3, 5)
DEFAULT_ATTACKS = ('fgsm', 'pgd')
MEAN_CORRUPTION_KEY = 'mCorr-mIoU'


def insert_corruption(pipeline: Sequence[dict], corruption: str,
                      severity: int, seed: int = 0) -> list:
    """Return a copy of ``pipeline`` with the corruption after the loader.

    Args:
        pipeline (Sequence[dict]): A test pipeline (list of transform
            configs) that contains ``LoadImageFromFile``.
        corruption (str): Corruption name.
        severity (int): 0..5.
        seed (int): Seed of the transform. Defaults to 0.

    Returns:
        list: The new pipeline.
    """
    pipeline = [copy.deepcopy(t) for t in pipeline]
    types = [str(t.get('type', '')) for t in pipeline]
    # Match 'LoadImageFromFile' also with a scope prefix ('mmseg.' / 'mmcv.').
    loaders = [i for i, t in enumerate(types)
               if t.split('.')[-1] == 'LoadImageFromFile']
    if not loaders:
        raise ValueError(
            'Cannot place the corruption: the test pipeline has no '
            f'LoadImageFromFile (types: {types}). Add one, or put '
            "dict(type='ImageCorruption', ...) into the pipeline yourself.")
    pipeline.insert(
        loaders[0] + 1,
        dict(type='ImageCorruption', corruption=corruption,
             severity=severity, seed=seed))
    return pipeline


def build_test_dataloader(cfg: Config,
                          num_images: Optional[int] = None,
                          corruption: Optional[str] = None,
                          severity: int = 0,
                          seed: int = 0) -> torch.utils.data.DataLoader:
    """Build ``cfg.test_dataloader``, optionally subset and corrupted.

    Args:
        cfg (Config): mmseg config with ``test_dataloader``.
        num_images (int, optional): Use only the first N images.
            Defaults to None (all).
        corruption (str, optional): Corruption inserted after
            ``LoadImageFromFile``. Defaults to None (clean).
        severity (int): Its severity. Defaults to 0.
        seed (int): Its seed. Defaults to 0.

    Returns:
        DataLoader: The test dataloader.
    """
    def add_corruption(pipeline):
        return insert_corruption(pipeline, corruption, severity, seed)

    return build_eval_dataloader(
        cfg, 'test', num_images,
        add_corruption if corruption is not None else None)


@contextlib.contextmanager
def _quiet_logger(quiet: bool):
    # IoUMetric logs a per-class table for every evaluation; a study runs
    # dozens of them, so hide INFO unless asked for.
    logger = MMLogger.get_current_instance()
    level = logger.level
    if quiet:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def evaluate_segmentor(model: torch.nn.Module,
                       dataloader: torch.utils.data.DataLoader,
                       evaluator_cfg: Union[dict, list],
                       attack: Optional[Callable[[torch.nn.Module, dict],
                                                 dict]] = None,
                       progress: Optional[ProgressBar] = None) -> dict:
    """Run ``model`` over ``dataloader`` and return the evaluator's metrics.

    Args:
        model (nn.Module): Segmentor in eval mode.
        dataloader (DataLoader): Test dataloader.
        evaluator_cfg (dict | list): ``cfg.test_evaluator``.
        attack (Callable, optional): ``attack(model, data) -> data`` applied
            to every batch before the prediction. Defaults to None.
        progress (ProgressBar, optional): Updated once per batch.

    Returns:
        dict: Metric name -> float (e.g. aAcc, mIoU, mAcc in %).
    """
    evaluator = Evaluator(copy.deepcopy(evaluator_cfg))
    evaluator.dataset_meta = dataloader.dataset.metainfo
    model.eval()
    for data in dataloader:
        if attack is not None:
            data = attack(model, data)
        with torch.no_grad():
            outputs = model.test_step(data)
        evaluator.process(data_samples=outputs, data_batch=data)
        if progress is not None:
            progress.update()
    metrics = evaluator.evaluate(len(dataloader.dataset))
    # float32 metrics as JSON would print as 76.62000274658203.
    return {k: round(float(v), 4) for k, v in metrics.items()}


def evaluate_robustness(cfg: Union[str, Config],
                        checkpoint: Optional[str] = None,
                        num_images: Optional[int] = None,
                        corruptions: Sequence[str] = tuple(CORRUPTIONS),
                        severities: Sequence[int] = DEFAULT_SEVERITIES,
                        attacks: Sequence[str] = DEFAULT_ATTACKS,
                        eps: float = 4.0,
                        pgd_steps: int = 10,
                        pgd_step_size: Optional[float] = None,
                        random_start: bool = False,
                        seed: int = 0,
                        device: Optional[str] = None,
                        show_progress: bool = True,
                        verbose: bool = False) -> dict:
    """mIoU of a segmentor on clean, corrupted and adversarial test images.

    Args:
        cfg (str | Config | dict): mmseg config (path or object) with
            ``model``, ``test_dataloader`` and ``test_evaluator``.
        checkpoint (str, optional): Weights; None evaluates the untrained
            net. Defaults to None.
        num_images (int, optional): Only the first N test images.
            Defaults to None (all).
        corruptions (Sequence[str]): Corruption names. Defaults to all nine.
        severities (Sequence[int]): Severities, each in 0..5.
            Defaults to (1, 3, 5).
        attacks (Sequence[str]): Attack names (``fgsm``, ``pgd``).
            Defaults to both.
        eps (float): L_inf radius in pixel units (0..255). Defaults to 4.
        pgd_steps (int): PGD steps. Defaults to 10.
        pgd_step_size (float, optional): PGD step; defaults to ``eps / 4``.
        random_start (bool): PGD random start. Defaults to False.
        seed (int): Seed of corruptions and random starts. Defaults to 0.
        device (str, optional): Defaults to ``'cuda'`` if available, else
            ``'cpu'``.
        show_progress (bool): Show an mmengine progress bar over all
            batches of the study. Defaults to True.
        verbose (bool): Keep the evaluator's per-class log tables.
            Defaults to False.

    Returns:
        dict: ``{"clean": {"mIoU", ...}, "corruptions": {name: {severity
        (str): {"mIoU", ...}}}, "mCorr-mIoU": mean over all corruptions and
        severities (None without corruptions), "attacks": {name: {"mIoU",
        ..., "eps"}}, "settings": {...}}``.
    """
    # Validate everything before the (slow) work starts.
    for name in corruptions:
        for severity in severities:
            check_corruption(name, severity)
    for name in attacks:
        check_attack(name, eps)
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    elif not isinstance(cfg, Config):
        cfg = Config(cfg)
    for key in ('model', 'test_dataloader', 'test_evaluator'):
        if cfg.get(key) is None:
            raise ValueError(f'The config has no `{key}`; robustness '
                             'evaluation needs model, test_dataloader and '
                             'test_evaluator.')
    init_default_scope(cfg.get('default_scope', 'mmseg'))
    if device is None:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'

    model = build_segmentor(cfg, checkpoint, device)

    def loader(corruption=None, severity=0):
        return build_test_dataloader(cfg, num_images, corruption, severity,
                                     seed)

    clean_loader = loader()
    n_runs = 1 + len(corruptions) * len(severities) + len(attacks)
    progress = ProgressBar(n_runs * len(clean_loader)) \
        if show_progress else None
    results = dict(clean={}, corruptions={}, attacks={})
    with _quiet_logger(not verbose):
        results['clean'] = evaluate_segmentor(
            model, clean_loader, cfg.test_evaluator, progress=progress)
        for name in corruptions:
            results['corruptions'][name] = {
                str(severity): evaluate_segmentor(
                    model, loader(name, severity), cfg.test_evaluator,
                    progress=progress)
                for severity in severities
            }
        for name in attacks:
            attack = build_attack(name, eps, pgd_steps, pgd_step_size,
                                  random_start, seed)
            metrics = evaluate_segmentor(
                model, clean_loader, cfg.test_evaluator, attack=attack,
                progress=progress)
            results['attacks'][name] = dict(metrics, eps=float(eps))
    if progress is not None:
        print()  # ProgressBar leaves the cursor on its line
    corrupted = [
        m['mIoU'] for per_severity in results['corruptions'].values()
        for m in per_severity.values()
    ]
    results[MEAN_CORRUPTION_KEY] = float(np.mean(corrupted)) \
        if corrupted else None
    results['settings'] = dict(
        config=cfg.filename,
        checkpoint=checkpoint,
        num_images=len(clean_loader.dataset),
        severities=[int(s) for s in severities],
        eps=float(eps),
        pgd_steps=int(pgd_steps),
        pgd_step_size=float(eps / 4 if pgd_step_size is None
                            else pgd_step_size),
        random_start=bool(random_start),
        seed=int(seed))
    return results


def format_robustness_table(results: dict) -> str:
    """Plain-text table of :func:`evaluate_robustness`'s result (mIoU, %).

    Args:
        results (dict): The result dict.

    Returns:
        str: One row per condition: clean, each corruption (one column per
        severity, and its mean), mCorr-mIoU, each attack.
    """
    from prettytable import PrettyTable  # mmseg's own dependency

    severities = sorted({
        s for per_severity in results['corruptions'].values()
        for s in per_severity
    }, key=int)
    table = PrettyTable(['condition'] + [f'sev {s}' for s in severities] +
                        ['mIoU'])
    blanks = [''] * len(severities)
    table.add_row(['clean'] + blanks + [f'{results["clean"]["mIoU"]:.2f}'])
    for name, per_severity in results['corruptions'].items():
        values = [per_severity[s]['mIoU'] for s in severities]
        table.add_row([name] + [f'{v:.2f}' for v in values] +
                      [f'{np.mean(values):.2f}'])
    if results.get(MEAN_CORRUPTION_KEY) is not None:
        table.add_row([MEAN_CORRUPTION_KEY] + blanks +
                      [f'{results[MEAN_CORRUPTION_KEY]:.2f}'])
    for name, metrics in results['attacks'].items():
        table.add_row([f'{name} (eps {metrics["eps"]:g})'] + blanks +
                      [f'{metrics["mIoU"]:.2f}'])
    table.align['condition'] = 'l'
    return table.get_string()


def plot_corruption_curves(results: dict, out_file: str) -> None:
    """Deprecated: moved to
    :func:`tips_mmseg.visualization.plot_corruption_curves` (plots live
    apart from the numbers they show)."""
    warnings.warn(
        'tips_mmseg.apis.plot_corruption_curves moved to '
        'tips_mmseg.visualization.plot_corruption_curves; the alias will be '
        'removed', DeprecationWarning, stacklevel=2)
    from tips_mmseg.visualization import \
        plot_corruption_curves as plot_curves
    plot_curves(results, out_file)


__all__ = [
    'evaluate_robustness', 'evaluate_segmentor', 'build_segmentor',
    'build_test_dataloader', 'insert_corruption', 'format_robustness_table',
    'plot_corruption_curves', 'MEAN_CORRUPTION_KEY'
]
