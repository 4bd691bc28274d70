"""Stand-alone shift-consistency evaluation of a model over a dataloader.

The same evaluator as :class:`~tips_mmseg.engine.hooks.ShiftConsistencyHook`
(so the same numbers for the same shifts), plus the consistency map.
Single process: for N processes use the hook inside ``runner.test()``.
"""
from typing import Optional, Sequence

import torch
from mmengine.utils import ProgressBar

from tips_mmseg.evaluation.shift_evaluator import (ShiftConsistencyEvaluator,
                                                   dataset_num_classes,
                                                   image_index_map,
                                                   image_index_of)
from tips_mmseg.evaluation.shift_metrics import (compute_shift_metrics,
                                                 consistency_by_shift)
from tips_mmseg.utils.shift_ops import (SHIFT_MODES, grid_axis,
                                             shift_grid)
from tips_mmseg.visualization.shift_heatmap import consistency_grid


@torch.no_grad()
def evaluate_shift_consistency(model,
                               dataloader,
                               shifts: Optional[Sequence] = None,
                               num_shifts: int = 5,
                               max_shift: int = 32,
                               seed: int = 0,
                               modes: Sequence[str] = SHIFT_MODES,
                               heatmap_step: Optional[int] = 4,
                               heatmap_max_shift: Optional[int] = None,
                               heatmap_images: Optional[int] = 16,
                               num_images: Optional[int] = None,
                               ignore_index: int = 255,
                               shift_batch_size: Optional[int] = None,
                               progress: bool = True) -> dict:
    """Shift metrics and the consistency map of a segmentor.

    Args:
        model (BaseSegmentor): A built mmseg segmentor (not wrapped); it is
            put in eval mode.
        dataloader (DataLoader): Test dataloader (mmseg test pipeline with
            ``LoadAnnotations`` for fidelity / shift_mIoU).
        shifts, num_shifts, max_shift, seed, modes, shift_batch_size: As for
            :class:`ShiftConsistencyHook`.
        heatmap_step (int, optional): Grid spacing of the consistency map in
            pixels; None or 0 skips the map. Defaults to 4.
        heatmap_max_shift (int, optional): Half-width of the map; None uses
            ``max_shift``. Defaults to None.
        heatmap_images (int, optional): The map averages over the first this
            many images (it costs one forward per grid point and image);
            None: all. Defaults to 16.
        num_images (int, optional): Evaluate only the first this many
            images; None: all. Defaults to None.
        ignore_index (int): Ground-truth label not scored. Defaults to 255.
        progress (bool): Show mmengine's progress bar. Defaults to True.

    Returns:
        dict: ``metrics`` (the keys of the hook, percent), ``num_images``,
        ``records`` (per image: index, shifts, per-shift scores) and, if
        drawn, ``heatmap``: ``dict(axis=[...], grid=[[...]], mode=...)``
        with ``grid[i][j]`` the consistency (%) at ``(axis[i], axis[j])``,
        ready for :func:`tips_mmseg.visualization.draw_consistency_map`.
    """
    model.eval()
    evaluator = ShiftConsistencyEvaluator(
        shifts=shifts,
        num_shifts=num_shifts,
        max_shift=max_shift,
        seed=seed,
        modes=modes,
        shift_batch_size=shift_batch_size,
        ignore_index=ignore_index,
        num_classes=dataset_num_classes(dataloader.dataset, model))
    map_evaluator = None
    if heatmap_step:
        map_half = heatmap_max_shift or max_shift
        map_evaluator = ShiftConsistencyEvaluator(
            shifts=shift_grid(map_half, heatmap_step),
            modes=('standard', ),
            shift_batch_size=shift_batch_size or 64,
            score_labels=False)
    dataset = dataloader.dataset
    total = len(dataset) if num_images is None else min(
        num_images, len(dataset))
    index_map = image_index_map(dataset)
    records, map_records = [], []
    bar = ProgressBar(total) if progress else None
    seen = 0
    for data_batch in dataloader:
        if seen >= total:
            break
        data = model.data_preprocessor(data_batch, False)
        inputs, samples = data['inputs'], data['data_samples']
        keep = min(len(samples), total - seen)
        inputs, samples = inputs[:keep], samples[:keep]
        indices = [image_index_of(s.metainfo, index_map) for s in samples]
        ref = evaluator.infer(model, inputs, [s.metainfo for s in samples])
        records.extend(evaluator.process(model, inputs, samples, indices, ref))
        if map_evaluator is not None and (heatmap_images is None
                                          or seen < heatmap_images):
            take = keep if heatmap_images is None else min(
                keep, heatmap_images - seen)
            map_records.extend(
                map_evaluator.process(model, inputs[:take], samples[:take],
                                      indices[:take], ref[:take]))
        seen += keep
        if bar is not None:
            for _ in range(keep):
                bar.update()
    if bar is not None:
        print()
    records.sort(key=lambda r: r['index'])
    result = dict(
        metrics=compute_shift_metrics(records),
        num_images=len(records),
        records=records)
    if map_evaluator is not None:
        axis = grid_axis(map_half, heatmap_step)
        grid = consistency_grid(consistency_by_shift(map_records), axis)
        result['heatmap'] = dict(
            axis=axis, grid=grid.tolist(), mode='standard',
            num_images=len(map_records))
    return result
