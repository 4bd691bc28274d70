"""Shift-consistency evaluation of a batch: shifted forwards and scoring.

Shared by :class:`~tips_mmseg.engine.hooks.ShiftConsistencyHook` (inside
mmseg's val/test loops) and :func:`tips_mmseg.apis.evaluate_shift_consistency`
(the stand-alone tool), so both give the same numbers.

Where the ground truth meets the network input (a documented choice): the
network input is the test pipeline's image after the data preprocessor,
possibly padded right/bottom to a batch size. Predictions are compared on
that grid, but only inside each image's valid (unpadded) box, and shifts act
inside that box, so an image is shifted as the image it is whatever it was
padded with. ``gt_sem_seg`` is at ``ori_shape`` in mmseg's test pipelines
(loaded after ``Resize``); it is flipped like the input if ``flip`` is set and
resized with nearest neighbour to the valid box when the sizes differ. With
no resize in the test pipeline (as in the tests) it is the exact ground
truth, and with shift ``(0, 0)`` ``shift_mIoU`` equals mmseg's mIoU.
"""
import time
import zlib
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .shift_metrics import (boundary_band, score_crops, score_shifts,
                            score_subpixel)
from ..utils.shift_ops import (check_crop_shift, check_shift,
                               check_subpixel_shift, crop_margin,
                               crop_window_corners, fourier_shift,
                               sample_shifts, sample_subpixel_shifts,
                               shift_batch)

#: Every protocol the evaluator runs; ``mASSC_boundary`` comes with
#: ``'standard'``.
EVAL_MODES = ('standard', 'circular', 'crop', 'subpixel')
#: What runs when ``modes`` is not given.
DEFAULT_MODES = ('standard', 'circular')
#: The modes driven by the integer ``shifts``.
INTEGER_MODES = ('standard', 'circular', 'crop')


def check_eval_modes(modes: Sequence[str]) -> tuple:
    """Validate ``modes``; returns them as a tuple in a fixed order."""
    if isinstance(modes, str):
        modes = (modes, )
    for mode in modes:
        if mode == 'boundary':
            raise ValueError(
                "'boundary' is not a mode of its own: mASSC_boundary is "
                "reported whenever 'standard' runs (with ground truth); add "
                "'standard' to modes and set boundary_width.")
        if mode not in EVAL_MODES:
            raise ValueError(f'Unknown shift-consistency mode {mode!r}; use '
                             f'some of {EVAL_MODES}.')
    if not modes:
        raise ValueError(f'modes is empty; use some of {EVAL_MODES}.')
    return tuple(m for m in EVAL_MODES if m in modes)


def image_index_map(dataset) -> Dict[str, int]:
    """Map ``img_path`` to the dataset index, to seed shifts per image.

    mmseg's ``PackSegInputs`` does not pack ``sample_idx``, so the index is
    recovered from the path. Returns an empty dict for datasets that cannot
    list their samples (then a stable hash of the path is used).
    """
    try:
        return {
            dataset.get_data_info(i)['img_path']: i
            for i in range(len(dataset))
        }
    except Exception:  # noqa: BLE001 - any dataset without get_data_info
        return {}


def dataset_num_classes(dataset, model) -> int:
    """Classes scored by ``shift_mIoU``: the dataset's, as IoUMetric uses,
    else the model's ``num_classes``."""
    classes = getattr(dataset, 'metainfo', {}).get('classes')
    return len(classes) if classes else int(model.num_classes)


def image_index_of(metainfo: dict, index_map: Dict[str, int]) -> int:
    """The image's dataset index (or a stable stand-in) from its metainfo."""
    if 'sample_idx' in metainfo:
        return int(metainfo['sample_idx'])
    path = metainfo.get('img_path')
    if path in index_map:
        return index_map[path]
    if path is None:
        raise KeyError('Cannot identify the image: its metainfo has neither '
                       "'sample_idx' nor 'img_path'; add 'sample_idx' to "
                       "PackSegInputs' meta_keys.")
    # Unlisted dataset: a hash of the path is stable across processes (unlike
    # Python's hash()) and far from the small indices of listed datasets.
    return 2**31 + zlib.crc32(str(path).encode())


def valid_box(metainfo: dict, size: Sequence[int]) -> tuple:
    """``(top, bottom, left, right)`` of the image inside the padded input.

    Uses the padding the data preprocessor recorded, read as mmseg's
    ``postprocess_result`` reads it.
    """
    padding = metainfo.get('img_padding_size',
                           metainfo.get('padding_size', [0, 0, 0, 0]))
    left, right, top, bottom = (int(p) for p in padding)
    return top, int(size[0]) - bottom, left, int(size[1]) - right


def _check_shift_pairs(shifts, name: str, what: str,
                       draw_hint: str) -> List[tuple]:
    """Every entry of ``shifts`` a pair (dh, dw), and at least one."""
    if len(shifts) == 0:
        raise ValueError(f'{name} is empty; give at least one (dh, dw) pair '
                         f'or leave it None to draw {draw_hint}.')
    for shift in shifts:
        if len(shift) != 2:
            raise ValueError(f'A {what} must be a pair (dh, dw), got '
                             f'{shift!r}.')
    return [tuple(shift) for shift in shifts]


def _check_integer_shifts(shifts) -> List[tuple]:
    checked = _check_shift_pairs(shifts, 'shifts', 'shift',
                                 'num_shifts shifts per image')
    for shift in checked:
        if any(float(v) != int(v) for v in shift):
            raise ValueError(
                f'shifts are whole pixels, got {shift!r}; for '
                "fractional shifts add 'subpixel' to modes and give them "
                'as subpixel_shifts.')
    return [(int(dh), int(dw)) for dh, dw in checked]


def _check_subpixel_shifts(shifts) -> List[tuple]:
    checked = _check_shift_pairs(shifts, 'subpixel_shifts',
                                 'sub-pixel shift',
                                 'num_shifts shifts in (-1, 1)^2 per image')
    return [(float(dh), float(dw)) for dh, dw in checked]


class ShiftConsistencyEvaluator:
    """Runs the shifted forwards for a batch and scores every image.

    Args:
        shifts (Sequence[tuple[int, int]], optional): Explicit integer shifts
            ``(dh, dw)`` applied to every image in the standard, circular
            and crop modes. If None, ``num_shifts`` shifts are drawn per
            image from ``{-M..M}^2 \\ {(0, 0)}``. Defaults to None.
        num_shifts (int): ``K`` shifts drawn per image (integer and
            sub-pixel draws alike). Defaults to 5.
        max_shift (int): ``M``; drawn shifts lie in ``[-M, M]^2``; the crop
            windows are ``(H - M) x (W - M)`` (with explicit shifts, ``M`` is
            their largest ``|dh|``, ``|dw|``). Defaults to 32.
        seed (int): Seed of the per-image draws. Defaults to 0.
        modes (Sequence[str]): Any of ``'standard'``, ``'circular'``,
            ``'crop'``, ``'subpixel'``. ``mASSC_worst``, ``mASSC_boundary``,
            ``shift_fidelity`` and ``shift_mIoU`` come with ``'standard'``.
            Defaults to ``('standard', 'circular')``.
        shift_batch_size (int, optional): Most shifted images per forward;
            None means all shifted copies of one data batch at once.
            Defaults to None.
        ignore_index (int): Ground-truth label that is not scored. Defaults
            to 255.
        num_classes (int, optional): Classes for ``shift_mIoU``; None takes
            the model's ``num_classes``. Defaults to None.
        score_labels (bool): Also score against the ground truth
            (``mASSC_boundary``, ``shift_fidelity``, ``shift_mIoU``,
            per-class consistency); False measures consistency only (e.g.
            for the consistency map). Defaults to True.
        subpixel_shifts (Sequence[tuple[float, float]], optional): Explicit
            fractional shifts for ``'subpixel'``; None draws ``num_shifts``
            per image from ``(-1, 1)^2``. Defaults to None.
        boundary_width (int): Half-width in px of the band around
            ground-truth class boundaries scored by ``mASSC_boundary``
            (3 suits 64 px images; scale it with the image). Defaults to 3.
    """

    def __init__(self,
                 shifts: Optional[Sequence[Sequence[int]]] = None,
                 num_shifts: int = 5,
                 max_shift: int = 32,
                 seed: int = 0,
                 modes: Sequence[str] = DEFAULT_MODES,
                 shift_batch_size: Optional[int] = None,
                 ignore_index: int = 255,
                 num_classes: Optional[int] = None,
                 score_labels: bool = True,
                 subpixel_shifts: Optional[Sequence[Sequence[float]]] = None,
                 boundary_width: int = 3):
        if shifts is not None:
            shifts = _check_integer_shifts(shifts)
        elif num_shifts < 1 or max_shift < 1:
            raise ValueError('num_shifts and max_shift must be >= 1, got '
                             f'{num_shifts} and {max_shift}.')
        if subpixel_shifts is not None:
            subpixel_shifts = _check_subpixel_shifts(subpixel_shifts)
        modes = check_eval_modes(modes)
        if shift_batch_size is not None and shift_batch_size < 1:
            raise ValueError('shift_batch_size must be >= 1 or None, got '
                             f'{shift_batch_size}.')
        if int(boundary_width) != boundary_width or boundary_width < 1:
            raise ValueError('boundary_width must be a whole number of '
                             f'pixels >= 1, got {boundary_width!r}.')
        self.shifts = shifts
        self.num_shifts = num_shifts
        self.max_shift = max_shift
        self.seed = seed
        self.modes = modes
        self.shift_batch_size = shift_batch_size
        self.ignore_index = ignore_index
        self.num_classes = num_classes
        self.score_labels = score_labels
        self.subpixel_shifts = subpixel_shifts
        self.boundary_width = int(boundary_width)
        #: Seconds spent in the shifted forwards (and the reference forward
        #: when it had to be run here); read by the benchmark.
        self.forward_time = 0.0

    @property
    def crop_margin(self) -> int:
        """``M`` of the crop windows ``(H - M) x (W - M)``."""
        if self.shifts is not None:
            return crop_margin(self.shifts)
        return int(self.max_shift)

    def shifts_for(self, image_index: int) -> List[tuple]:
        """The integer shifts of one image: the explicit list or its draw."""
        if self.shifts is not None:
            return list(self.shifts)
        return sample_shifts(self.num_shifts, self.max_shift, self.seed,
                             image_index)

    def subpixel_shifts_for(self, image_index: int) -> List[tuple]:
        """The fractional shifts of one image: explicit or drawn."""
        if self.subpixel_shifts is not None:
            return list(self.subpixel_shifts)
        return sample_subpixel_shifts(self.num_shifts, self.seed,
                                      image_index)

    def check_size(self, size: Sequence[int]) -> None:
        """Raise ValueError if the shifts cannot be applied to an image of
        ``size`` ``(H, W)`` in every requested mode (used to fail before
        any forward pass)."""
        if any(m in INTEGER_MODES for m in self.modes):
            extremes = self.shifts or [(self.max_shift, self.max_shift)]
            for shift in extremes:
                check_shift(shift, size)
                if 'crop' in self.modes:
                    check_crop_shift(shift, size, self.crop_margin)
        if 'subpixel' in self.modes:
            for shift in self.subpixel_shifts or [(1.0, 1.0)]:
                check_subpixel_shift(shift, size)

    # --- forwards ------------------------------------------------------
    @torch.no_grad()
    def infer(self,
              model,
              inputs: Tensor,
              metas: List[dict],
              post: Optional[Callable[[Tensor, int], Tensor]] = None
              ) -> Tensor:
        """The model's own inference (whole or slide, as its ``test_cfg``
        says) in chunks of ``shift_batch_size``, as labels ``(N, H, W)``.

        Args:
            post (callable, optional): ``post(logits, begin)`` turns a
                chunk's logits (at input size) into labels; default argmax.
        """
        chunk = self.shift_batch_size or len(inputs)
        labels = []
        start = time.perf_counter()
        for begin in range(0, len(inputs), chunk):
            # Fresh meta dicts: slide_inference writes into the first one.
            chunk_metas = [dict(m) for m in metas[begin:begin + chunk]]
            logits = model.inference(inputs[begin:begin + chunk], chunk_metas)
            if post is None:
                labels.append(self.logits_to_labels(model, logits, inputs))
            else:
                labels.append(
                    post(self.logits_at(model, logits, inputs), begin))
        labels = torch.cat(labels)
        if labels.is_cuda:
            torch.cuda.synchronize(labels.device)
        self.forward_time += time.perf_counter() - start
        return labels

    @staticmethod
    def logits_at(model, logits: Tensor, inputs: Tensor) -> Tensor:
        """Logits resized (bilinear, as mmseg does) to the input size."""
        if logits.shape[-2:] != inputs.shape[-2:]:
            logits = F.interpolate(
                logits,
                size=inputs.shape[-2:],
                mode='bilinear',
                align_corners=getattr(model, 'align_corners', False))
        return logits

    @staticmethod
    def logits_to_labels(model, logits: Tensor, inputs: Tensor) -> Tensor:
        """Argmax (or the binary threshold, as mmseg does) at input size."""
        logits = ShiftConsistencyEvaluator.logits_at(model, logits, inputs)
        if logits.shape[1] > 1:
            return logits.argmax(dim=1)
        threshold = getattr(getattr(model, 'decode_head', None), 'threshold',
                            0.5)
        return (logits.sigmoid() > threshold).long().squeeze(1)

    def crop_predictions(self, model, inputs: Tensor, metas: List[dict],
                         boxes: Sequence[tuple],
                         shifts: Sequence[Sequence[tuple]]) -> List[list]:
        """Labels of the two windows of every (image, shift).

        Each distinct window is run once; windows of one size go through
        the model together (in chunks of ``shift_batch_size``).

        Returns:
            list: Per image, per shift, ``(reference, shifted)`` labels of
            size ``(H - M) x (W - M)``.
        """
        margin = self.crop_margin
        windows = {}  # (image, top, left) -> position in its size group
        groups = {}  # (h, w) -> list of (image, top, left)
        for i, (box, image_shifts) in enumerate(zip(boxes, shifts)):
            size = (box[1] - box[0] - margin, box[3] - box[2] - margin)
            for shift in image_shifts:
                for corner in crop_window_corners(shift):
                    key = (i, ) + corner
                    if key not in windows:
                        group = groups.setdefault(size, [])
                        windows[key] = (size, len(group))
                        group.append(key)
        labels = {}
        for (h, w), keys in groups.items():
            batch = torch.stack([
                inputs[i, :, boxes[i][0] + top:boxes[i][0] + top + h,
                       boxes[i][2] + left:boxes[i][2] + left + w]
                for i, top, left in keys
            ])
            window_metas = [
                dict(metas[i], img_shape=(h, w), ori_shape=(h, w),
                     pad_shape=(h, w), padding_size=[0, 0, 0, 0])
                for i, _, _ in keys
            ]
            labels[(h, w)] = self.infer(model, batch, window_metas)
        result = []
        for i, image_shifts in enumerate(shifts):
            pairs = []
            for shift in image_shifts:
                pair = []
                for corner in crop_window_corners(shift):
                    size, pos = windows[(i, ) + corner]
                    pair.append(labels[size][pos])
                pairs.append(tuple(pair))
            result.append(pairs)
        return result

    def subpixel_predictions(self, model, inputs: Tensor, metas: List[dict],
                             boxes: Sequence[tuple],
                             shifts: Sequence[Sequence[tuple]]) -> Tensor:
        """Labels of every resampled copy, its logits shifted back.

        Returns:
            Tensor: ``(N * K, H, W)``; copy ``i * K + k`` is image ``i``
            under its ``k``-th fractional shift, brought back to the frame
            of the unshifted image (inside the valid box).
        """
        k = len(shifts[0])
        batch = inputs.repeat_interleave(k, dim=0)
        for i, (box, image_shifts) in enumerate(zip(boxes, shifts)):
            top, bottom, left, right = box
            batch[i * k:(i + 1) * k, :, top:bottom, left:right] = \
                fourier_shift(inputs[i, :, top:bottom, left:right],
                              image_shifts)
        flat = [s for image_shifts in shifts for s in image_shifts]

        def shift_back(logits: Tensor, begin: int) -> Tensor:
            logits = logits.clone()
            for j in range(len(logits)):
                top, bottom, left, right = boxes[(begin + j) // k]
                dh, dw = flat[begin + j]
                region = logits[j, :, top:bottom, left:right]
                logits[j, :, top:bottom, left:right] = fourier_shift(
                    region, [(-dh, -dw)])[0]
            return self.logits_to_labels(model, logits, logits)

        return self.infer(model, batch, [m for m in metas for _ in range(k)],
                          post=shift_back)

    # --- scoring -------------------------------------------------------
    def ground_truth(self, data_sample, box: tuple) -> Optional[Tensor]:
        """``gt_sem_seg`` aligned with the valid box of the network input."""
        if 'gt_sem_seg' not in data_sample:
            return None
        gt = data_sample.gt_sem_seg.data
        meta = data_sample.metainfo
        if meta.get('flip', False):
            dim = 2 if meta.get('flip_direction') == 'horizontal' else 1
            gt = gt.flip(dims=(dim, ))
        size = (box[1] - box[0], box[3] - box[2])
        if tuple(gt.shape[-2:]) != size:
            gt = F.interpolate(
                gt[None].float(), size=size, mode='nearest')[0].to(gt.dtype)
        return gt[0]

    def process(self,
                model,
                inputs: Tensor,
                data_samples: Sequence,
                image_indices: Sequence[int],
                ref_labels: Optional[Tensor] = None) -> List[dict]:
        """Score every image of a preprocessed batch.

        Args:
            model (BaseSegmentor): The (unwrapped) segmentor, in eval mode.
            inputs (Tensor): ``(N, C, H, W)`` output of the data
                preprocessor.
            data_samples (Sequence[SegDataSample]): With metainfo and,
                for the label-based scores, ``gt_sem_seg``.
            image_indices (Sequence[int]): Dataset index of every image
                (seeds its shifts, orders and dedupes results).
            ref_labels (Tensor, optional): ``(N, H, W)`` labels for the
                unshifted inputs if already computed (the hook reuses the
                loop's own forward); computed here if None.

        Returns:
            list[dict]: One record per image with ``index``, ``shifts``
            (integer), ``subpixel_shifts`` (if that mode runs),
            ``pred_counts`` (predicted pixels per class, unshifted) and a
            per-shift array per mode; standard mode with labels adds
            ``boundary``, ``fidelity``, ``areas`` and ``class_counts``.
        """
        metas = [ds.metainfo for ds in data_samples]
        boxes = [valid_box(m, inputs.shape[-2:]) for m in metas]
        sizes = [(b[1] - b[0], b[3] - b[2]) for b in boxes]
        integer = any(m in INTEGER_MODES for m in self.modes)
        shifts, sub_shifts = [], []
        for index, size in zip(image_indices, sizes):
            drawn = self.shifts_for(index) if integer else []
            shifts.append([check_shift(s, size) for s in drawn])
            if 'crop' in self.modes:
                for shift in drawn:
                    check_crop_shift(shift, size, self.crop_margin)
            if 'subpixel' in self.modes:
                sub_shifts.append([
                    check_subpixel_shift(s, size)
                    for s in self.subpixel_shifts_for(index)
                ])
        if ref_labels is None:
            ref_labels = self.infer(model, inputs, metas)
        num_classes = self.num_classes or model.num_classes
        with_labels = 'standard' in self.modes and self.score_labels
        gts = [
            self.ground_truth(sample, box)
            for sample, box in zip(data_samples, boxes)
        ]
        if with_labels and any(gt is None for gt in gts):
            raise KeyError(
                'mASSC_boundary, shift_fidelity and shift_mIoU need '
                'gt_sem_seg in the data samples; load annotations in the '
                "test pipeline, or run without 'standard' (e.g. "
                "modes=('circular',)).")

        k = len(shifts[0])
        shifted = {}
        for mode in ('standard', 'circular'):
            if mode in self.modes:
                batch = shift_batch(inputs, shifts, boxes, mode)
                shifted[mode] = self.infer(
                    model, batch, [m for m in metas for _ in range(k)])
        if 'crop' in self.modes:
            crops = self.crop_predictions(model, inputs, metas, boxes, shifts)
        if 'subpixel' in self.modes:
            k_sub = len(sub_shifts[0])
            back = self.subpixel_predictions(model, inputs, metas, boxes,
                                             sub_shifts)

        records = []
        for i, (index, box) in enumerate(zip(image_indices, boxes)):
            top, bottom, left, right = box
            pred = ref_labels[i, top:bottom, left:right]
            gt = gts[i].to(pred.device) if gts[i] is not None else None
            record = dict(index=int(index), shifts=shifts[i])
            record['pred_counts'] = torch.bincount(
                pred.reshape(-1).long().clamp(min=0),
                minlength=num_classes).cpu().numpy()
            for mode in ('standard', 'circular'):
                if mode not in self.modes:
                    continue
                preds = shifted[mode][i * k:(i + 1) * k, top:bottom,
                                      left:right]
                labelled = mode == 'standard' and with_labels
                band = boundary_band(gt, self.boundary_width,
                                     self.ignore_index,
                                     num_classes) if labelled else None
                scores = score_shifts(pred, preds, shifts[i], mode,
                                      gt if labelled else None,
                                      self.ignore_index, num_classes, band)
                record[mode] = scores['consistency']
                for key in ('boundary', 'fidelity', 'areas', 'class_counts'):
                    if key in scores:
                        record[key] = scores[key]
            if 'crop' in self.modes:
                refs, news = zip(*crops[i]) if crops[i] else ((), ())
                record['crop'] = score_crops(refs, news, shifts[i])
            if 'subpixel' in self.modes:
                record['subpixel_shifts'] = sub_shifts[i]
                record['subpixel'] = score_subpixel(
                    pred, back[i * k_sub:(i + 1) * k_sub, top:bottom,
                               left:right], sub_shifts[i])
            records.append(record)
        return records
