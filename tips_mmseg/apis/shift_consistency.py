"""Stand-alone shift-consistency evaluation of a model over a dataloader.

The same wrapper and per-image scoring as the metric (so the same numbers
for the same shifts), plus the consistency map. Single process: for N
processes use ``ShiftConsistencyMetric`` (or the hook) in ``runner.test()``.
"""
from typing import Optional, Sequence

import torch
from mmengine.utils import ProgressBar

from tips_mmseg.evaluation.shift_metrics import (
    aligned_ground_truth, class_consistency, compute_shift_metrics,
    consistency_by_shift, dominant_class, score_image, single_class_warning)
from tips_mmseg.models.segmentors.shift_tta import (ShiftPredictor, image_key,
                                                    logits_to_labels)
from tips_mmseg.utils.shift_ops import (DEFAULT_MODES, EVAL_MODES, grid_axis,
                                        shift_grid)
from tips_mmseg.analysis.consistency_map import consistency_grid

#: What the consistency map can show: a mode, or the boundary band.
HEATMAP_MODES = EVAL_MODES + ('boundary', )


def map_predictor(mode: str, half: float, step: float,
                  shift_batch_size: Optional[int]) -> ShiftPredictor:
    """The predictor of a consistency map: every grid shift for every image,
    in one mode (``'boundary'``: standard shifts, scored on the band)."""
    if mode not in HEATMAP_MODES:
        raise ValueError(f'Unknown heatmap mode {mode!r}; use one of '
                         f'{HEATMAP_MODES}.')
    grid = shift_grid(half, step)
    batch = shift_batch_size or 64
    if mode == 'subpixel':
        return ShiftPredictor(subpixel_shifts=grid,
                              modes=('subpixel', ),
                              shift_batch_size=batch)
    if any(float(v) != int(v) for shift in grid for v in shift):
        raise ValueError(f'A {mode} map needs whole-pixel steps, got '
                         f'step={step}, half-width={half}; fractional '
                         "steps are for heatmap_mode='subpixel'.")
    grid = [(int(dh), int(dw)) for dh, dw in grid]
    return ShiftPredictor(shifts=grid,
                          modes=('standard' if mode == 'boundary' else mode, ),
                          shift_batch_size=batch)


def _score(shifted,
           samples,
           num_classes,
           ignore_index,
           boundary_width,
           score_labels=True):
    records = []
    for extra, sample in zip(shifted, samples):
        gt = None
        if 'gt_sem_seg' in sample:
            box = extra['box']
            gt = aligned_ground_truth(sample.gt_sem_seg.data, sample.metainfo,
                                      (box[1] - box[0], box[3] - box[2]))
        records.append(
            score_image(extra, gt, ignore_index, num_classes, boundary_width,
                        score_labels))
    return records


@torch.no_grad()
def evaluate_shift_consistency(model,
                               dataloader,
                               shifts: Optional[Sequence] = None,
                               num_shifts: int = 5,
                               max_shift: int = 32,
                               seed: int = 0,
                               modes: Sequence[str] = DEFAULT_MODES,
                               heatmap_step: Optional[float] = 4,
                               heatmap_max_shift: Optional[float] = None,
                               heatmap_images: Optional[int] = 16,
                               num_images: Optional[int] = None,
                               ignore_index: int = 255,
                               shift_batch_size: Optional[int] = None,
                               progress: bool = True,
                               subpixel_shifts: Optional[Sequence] = None,
                               boundary_width: int = 3,
                               heatmap_mode: str = 'standard',
                               single_class_threshold: float = 0.99) -> dict:
    """Shift metrics and the consistency map of a segmentor.

    Args:
        model (BaseSegmentor): A built mmseg segmentor (not wrapped); it is
            put in eval mode.
        dataloader (DataLoader): Test dataloader (mmseg test pipeline with
            ``LoadAnnotations`` for fidelity / shift_mIoU).
        shifts, num_shifts, max_shift, seed, modes, shift_batch_size,
            subpixel_shifts, boundary_width, single_class_threshold: As for
            :class:`ShiftConsistencyHook`.
        heatmap_step (float, optional): Grid spacing of the consistency map
            in pixels (fractional for ``heatmap_mode='subpixel'``, e.g.
            0.25); None or 0 skips the map. Defaults to 4.
        heatmap_max_shift (float, optional): Half-width of the map; None
            uses ``max_shift`` (1 for a sub-pixel map). Defaults to None.
        heatmap_mode (str): The map's protocol: ``'standard'``,
            ``'circular'``, ``'crop'`` (windows of ``(H - M) x (W - M)``
            with ``M`` the half-width), ``'subpixel'`` or ``'boundary'``
            (standard shifts scored on the boundary band). Defaults to
            ``'standard'``.
        heatmap_images (int, optional): The map averages over the first this
            many images (it costs one forward per grid point and image);
            None: all. Defaults to 16.
        num_images (int, optional): Evaluate only the first this many
            images; None: all. Defaults to None.
        ignore_index (int): Ground-truth label not scored. Defaults to 255.
        progress (bool): Show mmengine's progress bar. Defaults to True.

    Returns:
        dict: ``metrics`` (the keys of the hook, percent), ``num_images``,
        ``records`` (per image: index, shifts, per-shift scores),
        ``class_consistency`` (``{class: %}``, standard shifts, per
        ground-truth class), ``dominant_class`` (``dict(name, share)``: the
        most predicted class and its share of the pixels), ``warning``
        (text or None: set when that share reaches
        ``single_class_threshold``) and, if drawn, ``heatmap``:
        ``dict(axis=[...], grid=[[...]], mode=...)``
        with ``grid[i][j]`` the consistency (%) at ``(axis[i], axis[j])``,
        ready for :func:`tips_mmseg.visualization.draw_consistency_map`.
    """
    model.eval()
    names = getattr(dataloader.dataset, 'metainfo', {}).get('classes')
    num_classes = len(names) if names else int(model.num_classes)
    predictor = ShiftPredictor(shifts=shifts,
                               num_shifts=num_shifts,
                               max_shift=max_shift,
                               seed=seed,
                               modes=modes,
                               shift_batch_size=shift_batch_size,
                               subpixel_shifts=subpixel_shifts)
    scoring = dict(num_classes=num_classes,
                   ignore_index=ignore_index,
                   boundary_width=boundary_width)
    mapper = None
    if heatmap_step:
        map_half = heatmap_max_shift or (1.0 if heatmap_mode == 'subpixel' else
                                         max_shift)
        mapper = map_predictor(heatmap_mode, map_half, heatmap_step,
                               shift_batch_size)
    dataset = dataloader.dataset
    total = len(dataset) if num_images is None else min(
        num_images, len(dataset))
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
        keys = [image_key(s.metainfo) for s in samples]
        logits = model.inference(inputs, [s.metainfo for s in samples])
        ref = logits_to_labels(model, logits, inputs.shape[-2:])
        records.extend(
            _score(predictor.predict(model, inputs, samples, ref, keys),
                   samples, **scoring))
        if mapper is not None and (heatmap_images is None
                                   or seen < heatmap_images):
            take = keep if heatmap_images is None else min(
                keep, heatmap_images - seen)
            map_records.extend(
                _score(mapper.predict(model, inputs[:take], samples[:take],
                                      ref[:take], keys[:take]),
                       samples[:take],
                       **scoring,
                       score_labels=heatmap_mode == 'boundary'))
        seen += keep
        if bar is not None:
            for _ in range(keep):
                bar.update()
    if bar is not None:
        print()
    top = dominant_class(records)
    result = dict(metrics=compute_shift_metrics(records),
                  num_images=len(records),
                  records=records,
                  class_consistency=class_consistency(records, names),
                  dominant_class=None if top is None else dict(
                      name=names[top[0]]
                      if names and top[0] < len(names) else str(top[0]),
                      share=top[1] * 100),
                  warning=single_class_warning(records, single_class_threshold,
                                               names))
    if mapper is not None:
        axis = grid_axis(map_half, heatmap_step)
        grid = consistency_grid(
            consistency_by_shift(map_records, heatmap_mode), axis)
        result['heatmap'] = dict(axis=axis,
                                 grid=grid.tolist(),
                                 mode=heatmap_mode,
                                 num_images=len(map_records))
    return result
