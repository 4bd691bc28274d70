"""Run images through a segmentor and report the MSB of its downsamplers."""
from typing import Iterable, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.utils import ProgressBar

from .msb import MSB_KEYS, MSBRecorder


def _batch_size(data_batch: dict) -> int:
    return len(data_batch['inputs'])


def _first_images(data_batch: dict, count: int) -> dict:
    """The first ``count`` images of an mmseg data batch."""
    return {key: value[:count] for key, value in data_batch.items()}


def analyze_msb(model: nn.Module,
                dataloader: Iterable[dict],
                num_images: Optional[int] = None,
                subsample_types: Sequence[type] = (),
                show_progress: bool = True) -> dict:
    """Measure the MSB of every downsampling layer of ``model`` on real images.

    Each batch goes through ``model.test_step`` (data preprocessor, the whole
    encoder-decoder inference as the config's ``test_cfg`` says) in eval mode
    without gradients, while an :class:`MSBRecorder` listens. The model's
    training mode is restored afterwards.

    Args:
        model (nn.Module): An mmseg segmentor (a ``BaseModel`` with
            ``test_step``).
        dataloader (Iterable[dict]): Yields mmseg data batches
            (``dict(inputs=[...], data_samples=[...])``), e.g. the config's
            val dataloader.
        num_images (int, optional): Stop after this many images. Defaults to
            None (the whole dataloader).
        subsample_types (Sequence[type]): Extra plain stride-2 subsampling
            module classes, see :class:`MSBRecorder`. Defaults to ().
        show_progress (bool): Show an mmengine progress bar. Defaults to True.

    Returns:
        dict: ``{'layers': [{'name', 'type', 'msb_pixel', 'msb_soft',
        'msb_phase', 'output_elements', 'flat_fraction'}, ...], 'mean':
        {'msb_pixel', 'msb_soft', 'msb_phase'}, 'num_images': int}``; a value
        is None where it does not apply.

    Raises:
        ValueError: ``num_images`` < 1, the dataloader is empty, or the model
            has no downsampling operator.
    """
    if num_images is not None and num_images < 1:
        raise ValueError(f'num_images must be >= 1, got {num_images}.')
    total = num_images
    if total is None and hasattr(dataloader, 'dataset'):
        total = len(dataloader.dataset)
    progress = ProgressBar(total) if show_progress and total else None

    recorder = MSBRecorder(model, subsample_types=subsample_types)
    was_training = model.training
    model.eval()
    seen = 0
    try:
        with recorder, torch.no_grad():
            for data_batch in dataloader:
                if num_images is not None:
                    remaining = num_images - seen
                    if _batch_size(data_batch) > remaining:
                        data_batch = _first_images(data_batch, remaining)
                model.test_step(data_batch)
                seen += _batch_size(data_batch)
                if progress is not None:
                    for _ in range(_batch_size(data_batch)):
                        progress.update()
                if num_images is not None and seen >= num_images:
                    break
    finally:
        model.train(was_training)
    if progress is not None:
        print()  # the progress bar leaves the cursor on its line
    if seen == 0:
        raise ValueError('The dataloader yielded no images; MSB needs at '
                         'least one.')
    if num_images is not None and seen < num_images:
        print_log(f'MSB: the dataloader had only {seen} of the '
                  f'{num_images} images asked for.', logger='current')
    result = recorder.summary()
    silent = [layer['name'] for layer in result['layers']
              if not layer['output_elements']]
    if silent:
        print_log(f'MSB: these downsampling layers never ran: {silent}.',
                  logger='current')
    result['num_images'] = seen
    return result


def _fmt(value: Optional[float]) -> str:
    return '-' if value is None else f'{value:.4f}'


def format_msb_table(result: dict) -> str:
    """A plain-text table of the layers and the mean of an MSB result.

    Args:
        result (dict): As returned by :func:`analyze_msb`.

    Returns:
        str: One row per layer, then the mean ('-' where None).
    """
    rows: List[List[str]] = [['layer', 'type', *MSB_KEYS]]
    for layer in result['layers']:
        rows.append([layer['name'], layer['type'],
                     *(_fmt(layer[key]) for key in MSB_KEYS)])
    rows.append(['mean (by output elements)', '',
                 *(_fmt(result['mean'][key]) for key in MSB_KEYS)])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(cell.ljust(width) if i < 2 else cell.rjust(width)
                       for i, (cell, width) in enumerate(zip(row, widths)))
             for row in rows]
    rule = '-' * len(lines[0])
    return '\n'.join([lines[0], rule, *lines[1:-1], rule, lines[-1]])
