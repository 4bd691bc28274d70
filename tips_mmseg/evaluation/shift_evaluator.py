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
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from .shift_metrics import score_shifts
from ..utils.shift_ops import (SHIFT_MODES, check_mode, check_shift,
                               sample_shifts, shift_batch)


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


class ShiftConsistencyEvaluator:
    """Runs the shifted forwards for a batch and scores every image.

    Args:
        shifts (Sequence[tuple[int, int]], optional): Explicit shifts
            ``(dh, dw)`` applied to every image. If None, ``num_shifts``
            shifts are drawn per image. Defaults to None.
        num_shifts (int): ``K`` shifts drawn per image. Defaults to 5.
        max_shift (int): ``M``; drawn shifts lie in ``[-M, M]^2``. Defaults
            to 32.
        seed (int): Seed of the per-image draws. Defaults to 0.
        modes (Sequence[str]): Any of ``'standard'``, ``'circular'``.
            ``mASSC_worst``, ``shift_fidelity`` and ``shift_mIoU`` need
            ``'standard'``. Defaults to both.
        shift_batch_size (int, optional): Most shifted images per forward;
            None means all shifted copies of one data batch at once.
            Defaults to None.
        ignore_index (int): Ground-truth label that is not scored. Defaults
            to 255.
        num_classes (int, optional): Classes for ``shift_mIoU``; None takes
            the model's ``num_classes``. Defaults to None.
        score_labels (bool): Also score against the ground truth
            (``shift_fidelity``, ``shift_mIoU``); False measures consistency
            only (e.g. for the consistency map). Defaults to True.
    """

    def __init__(self,
                 shifts: Optional[Sequence[Sequence[int]]] = None,
                 num_shifts: int = 5,
                 max_shift: int = 32,
                 seed: int = 0,
                 modes: Sequence[str] = SHIFT_MODES,
                 shift_batch_size: Optional[int] = None,
                 ignore_index: int = 255,
                 num_classes: Optional[int] = None,
                 score_labels: bool = True):
        if shifts is not None:
            if len(shifts) == 0:
                raise ValueError('shifts is empty; give at least one '
                                 '(dh, dw) pair or leave it None to draw '
                                 'num_shifts shifts per image.')
            shifts = [tuple(int(v) for v in s) for s in shifts]
            for shift in shifts:
                if len(shift) != 2:
                    raise ValueError(f'A shift must be a pair (dh, dw), got '
                                     f'{shift!r}.')
        elif num_shifts < 1 or max_shift < 1:
            raise ValueError('num_shifts and max_shift must be >= 1, got '
                             f'{num_shifts} and {max_shift}.')
        modes = tuple(check_mode(m) for m in modes)
        if not modes:
            raise ValueError(f'modes is empty; use some of {SHIFT_MODES}.')
        if shift_batch_size is not None and shift_batch_size < 1:
            raise ValueError('shift_batch_size must be >= 1 or None, got '
                             f'{shift_batch_size}.')
        self.shifts = shifts
        self.num_shifts = num_shifts
        self.max_shift = max_shift
        self.seed = seed
        self.modes = modes
        self.shift_batch_size = shift_batch_size
        self.ignore_index = ignore_index
        self.num_classes = num_classes
        self.score_labels = score_labels
        #: Seconds spent in the shifted forwards (and the reference forward
        #: when it had to be run here); read by the benchmark.
        self.forward_time = 0.0

    def shifts_for(self, image_index: int) -> List[tuple]:
        """The shifts of one image: the explicit list or its seeded draw."""
        if self.shifts is not None:
            return list(self.shifts)
        return sample_shifts(self.num_shifts, self.max_shift, self.seed,
                             image_index)

    @torch.no_grad()
    def infer(self, model, inputs: Tensor, metas: List[dict]) -> Tensor:
        """The model's own inference (whole or slide, as its ``test_cfg``
        says) in chunks of ``shift_batch_size``, as labels ``(N, H, W)``."""
        chunk = self.shift_batch_size or len(inputs)
        labels = []
        start = time.perf_counter()
        for begin in range(0, len(inputs), chunk):
            # Fresh meta dicts: slide_inference writes into the first one.
            chunk_metas = [dict(m) for m in metas[begin:begin + chunk]]
            logits = model.inference(inputs[begin:begin + chunk], chunk_metas)
            labels.append(self.logits_to_labels(model, logits, inputs))
        labels = torch.cat(labels)
        if labels.is_cuda:
            torch.cuda.synchronize(labels.device)
        self.forward_time += time.perf_counter() - start
        return labels

    @staticmethod
    def logits_to_labels(model, logits: Tensor, inputs: Tensor) -> Tensor:
        """Argmax (or the binary threshold, as mmseg does) at input size."""
        if logits.shape[-2:] != inputs.shape[-2:]:
            logits = F.interpolate(
                logits,
                size=inputs.shape[-2:],
                mode='bilinear',
                align_corners=getattr(model, 'align_corners', False))
        if logits.shape[1] > 1:
            return logits.argmax(dim=1)
        threshold = getattr(getattr(model, 'decode_head', None), 'threshold',
                            0.5)
        return (logits.sigmoid() > threshold).long().squeeze(1)

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
                for fidelity / shift_mIoU, ``gt_sem_seg``.
            image_indices (Sequence[int]): Dataset index of every image
                (seeds its shifts, orders and dedupes results).
            ref_labels (Tensor, optional): ``(N, H, W)`` labels for the
                unshifted inputs if already computed (the hook reuses the
                loop's own forward); computed here if None.

        Returns:
            list[dict]: One record per image with ``index``, ``shifts`` and
            per-shift arrays for each mode (plus ``fidelity`` and ``areas``
            for standard shifts).
        """
        metas = [ds.metainfo for ds in data_samples]
        boxes = [valid_box(m, inputs.shape[-2:]) for m in metas]
        shifts = []
        for index, box in zip(image_indices, boxes):
            size = (box[1] - box[0], box[3] - box[2])
            shifts.append([check_shift(s, size) for s in self.shifts_for(index)])
        if ref_labels is None:
            ref_labels = self.infer(model, inputs, metas)
        num_classes = self.num_classes or model.num_classes

        k = len(shifts[0])
        shifted = {}
        for mode in self.modes:
            batch = shift_batch(inputs, shifts, boxes, mode)
            shifted[mode] = self.infer(
                model, batch, [m for m in metas for _ in range(k)])

        records = []
        for i, (index, box) in enumerate(zip(image_indices, boxes)):
            top, bottom, left, right = box
            pred = ref_labels[i, top:bottom, left:right]
            gt = self.ground_truth(data_samples[i], box)
            record = dict(index=int(index), shifts=shifts[i])
            for mode in self.modes:
                preds = shifted[mode][i * k:(i + 1) * k, top:bottom,
                                      left:right]
                with_labels = mode == 'standard' and self.score_labels
                if with_labels and gt is None:
                    raise KeyError(
                        'shift_fidelity and shift_mIoU need gt_sem_seg in '
                        'the data samples; load annotations in the test '
                        "pipeline or use modes=('circular',).")
                scores = score_shifts(
                    pred, preds, shifts[i], mode,
                    gt.to(pred.device) if with_labels else None,
                    self.ignore_index, num_classes)
                record[mode] = scores['consistency']
                if with_labels:
                    record['fidelity'] = scores['fidelity']
                    record['areas'] = scores['areas']
            records.append(record)
        return records
