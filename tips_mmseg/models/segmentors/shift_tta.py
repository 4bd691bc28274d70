"""A test-time wrapper that adds shifted predictions to a segmentor's output.

:class:`ShiftTTAModel` wraps any mmseg segmentor with an
``inference(inputs, batch_img_metas)`` method (``EncoderDecoder`` and its
subclasses). In ``val_step`` / ``test_step`` it returns the segmentor's own
predictions, each data sample carrying one more field,
``shift_predictions``: the labels of the image under its shifts in every
requested protocol. :class:`~tips_mmseg.evaluation.ShiftConsistencyMetric`
scores them; the wrapper itself computes no metric.

Where the ground truth meets the network input (a documented choice): the
shifts act on the test pipeline's image after the data preprocessor,
possibly padded right/bottom. Predictions are kept at that grid, inside each
image's valid (unpadded) box, and shifts act inside that box, so an image is
shifted as the image it is whatever it was padded with.

Everything else (``train_step``, ``forward`` in any mode, the data
preprocessor, attributes such as ``num_classes``) is the wrapped
segmentor's, and the state dict has the segmentor's keys, so checkpoints
move freely between the plain and the wrapped model.
"""
import os.path as osp
import time
import zlib
from typing import Callable, List, Optional, Sequence, Union

import torch
import torch.nn.functional as F
from mmengine.model import BaseTTAModel
from mmseg.registry import MODELS
from torch import Tensor, nn

from ...utils.shift_ops import (
    DEFAULT_MODES, INTEGER_MODES, check_crop_shift, check_eval_modes,
    check_integer_shifts, check_shift, check_subpixel_shift,
    check_subpixel_shifts, crop_margin, crop_window_corners, fourier_shift,
    sample_shifts, sample_subpixel_shifts, shift_batch, valid_box)

#: Name of the data-sample field that carries the shifted predictions.
SHIFT_FIELD = 'shift_predictions'


def image_key(metainfo: dict) -> int:
    """The number that seeds an image's shift draws.

    ``sample_idx`` (its dataset index) when the test pipeline packs it
    (``PackSegInputs(meta_keys=(..., 'sample_idx'))``), else a stable hash
    (CRC32) of the image's file name: the same on every machine, process
    and batch size, and independent of which other images are evaluated.
    """
    if 'sample_idx' in metainfo:
        return int(metainfo['sample_idx'])
    path = metainfo.get('img_path')
    if path is None:
        raise KeyError('Cannot identify the image to seed its shifts: its '
                       "metainfo has neither 'sample_idx' nor 'img_path'; "
                       "add 'sample_idx' to PackSegInputs' meta_keys.")
    return zlib.crc32(osp.basename(str(path)).encode())


def logits_at(segmentor, logits: Tensor, size: Sequence[int]) -> Tensor:
    """Logits resized (bilinear, as mmseg does) to ``size``."""
    if tuple(logits.shape[-2:]) != tuple(size):
        logits = F.interpolate(logits,
                               size=tuple(size),
                               mode='bilinear',
                               align_corners=getattr(segmentor,
                                                     'align_corners', False))
    return logits


def logits_to_labels(segmentor, logits: Tensor, size: Sequence[int]) -> Tensor:
    """Argmax (or the binary threshold, as mmseg does) at ``size``."""
    logits = logits_at(segmentor, logits, size)
    if logits.shape[1] > 1:
        return logits.argmax(dim=1)
    threshold = getattr(getattr(segmentor, 'decode_head', None), 'threshold',
                        0.5)
    return (logits.sigmoid() > threshold).long().squeeze(1)


def _segmentor_keys(module, state_dict, prefix, local_metadata):
    """State-dict hook: the wrapped segmentor's keys without ``module.``,
    and nothing of the wrapper's own (it has no state)."""
    inner = prefix + 'module.'
    for key in list(state_dict):
        if key.startswith(prefix) and not key.startswith(inner):
            del state_dict[key]
    for key in list(state_dict):
        if key.startswith(inner):
            state_dict[prefix + key[len(inner):]] = state_dict.pop(key)
    metadata = getattr(state_dict, '_metadata', None)
    if metadata is not None:
        for key in list(metadata):
            if key == inner[:-1] or key.startswith(inner):
                metadata[prefix + key[len(inner):]] = metadata.pop(key)
    return state_dict


def _wrapped_keys(state_dict, prefix, local_metadata, strict, missing_keys,
                  unexpected_keys, error_msgs):
    """Load pre-hook (torch's ``load_state_dict``): a segmentor's keys go
    into the wrapped segmentor. mmengine's loader unwraps BaseTTAModel
    itself and never gets here."""
    inner = prefix + 'module.'
    for key in list(state_dict):
        if key.startswith(prefix) and not key.startswith(inner):
            state_dict[inner + key[len(prefix):]] = state_dict.pop(key)


class ShiftPredictor:
    """Batched shifted predictions of a segmentor, in every protocol.

    Holds the shift settings; works with anything that has the segmentor's
    ``inference(inputs, batch_img_metas)``, ``num_classes`` and
    ``align_corners`` (an mmseg segmentor, or the ONNX runner of
    :mod:`tips_mmseg.apis.export`). Args: as :class:`ShiftTTAModel`.
    """

    def __init__(self,
                 shifts: Optional[Sequence[Sequence[int]]] = None,
                 num_shifts: int = 5,
                 max_shift: int = 32,
                 seed: int = 0,
                 modes: Sequence[str] = DEFAULT_MODES,
                 subpixel_shifts: Optional[Sequence[Sequence[float]]] = None,
                 shift_batch_size: Optional[int] = None):
        if shifts is not None:
            shifts = check_integer_shifts(shifts)
        elif num_shifts < 1 or max_shift < 1:
            raise ValueError('num_shifts and max_shift must be >= 1, got '
                             f'{num_shifts} and {max_shift}.')
        if subpixel_shifts is not None:
            subpixel_shifts = check_subpixel_shifts(subpixel_shifts)
        if shift_batch_size is not None and shift_batch_size < 1:
            raise ValueError('shift_batch_size must be >= 1 or None, got '
                             f'{shift_batch_size}.')
        self.shifts = shifts
        self.num_shifts = num_shifts
        self.max_shift = max_shift
        self.seed = seed
        self.modes = check_eval_modes(modes)
        self.subpixel_shifts = subpixel_shifts
        self.shift_batch_size = shift_batch_size
        self.reset_timers()

    def reset_timers(self) -> None:
        """Zero :attr:`forward_time` (seconds in the shifted forwards) and
        :attr:`shift_time` (all shift work); read by
        tools/benchmark_shift_hook.py."""
        self.forward_time = 0.0
        self.shift_time = 0.0

    # --- shifts -------------------------------------------------------------
    @property
    def crop_margin(self) -> int:
        """``M`` of the crop windows ``(H - M) x (W - M)``."""
        if self.shifts is not None:
            return crop_margin(self.shifts)
        return int(self.max_shift)

    def shifts_for(self, key: int) -> List[tuple]:
        """The integer shifts of one image: the explicit list or its draw."""
        if self.shifts is not None:
            return list(self.shifts)
        return sample_shifts(self.num_shifts, self.max_shift, self.seed, key)

    def subpixel_shifts_for(self, key: int) -> List[tuple]:
        """The fractional shifts of one image: explicit or drawn."""
        if self.subpixel_shifts is not None:
            return list(self.subpixel_shifts)
        return sample_subpixel_shifts(self.num_shifts, self.seed, key)

    def check_size(self, size: Sequence[int]) -> None:
        """Raise ValueError if the shifts cannot be applied to an image of
        ``size`` ``(H, W)`` in every mode (to fail before any forward)."""
        if any(m in INTEGER_MODES for m in self.modes):
            for shift in self.shifts or [(self.max_shift, self.max_shift)]:
                check_shift(shift, size)
                if 'crop' in self.modes:
                    check_crop_shift(shift, size, self.crop_margin)
        if 'subpixel' in self.modes:
            for shift in self.subpixel_shifts or [(1.0, 1.0)]:
                check_subpixel_shift(shift, size)

    @torch.no_grad()
    def predict(self,
                segmentor,
                inputs: Tensor,
                data_samples: Sequence,
                reference: Tensor,
                keys: Optional[Sequence[int]] = None) -> List[dict]:
        """Shifted predictions of every image of a preprocessed batch.

        Args:
            segmentor (BaseSegmentor): In eval mode.
            inputs (Tensor): ``(N, C, H, W)`` output of the data
                preprocessor.
            data_samples (Sequence[SegDataSample]): With metainfo.
            reference (Tensor): ``(N, H, W)`` labels of the unshifted
                inputs (at input size).
            keys (Sequence[int], optional): Per image, the number seeding
                its draws; None: :func:`image_key` of its metainfo.

        Returns:
            list[dict]: Per image: ``key``, ``box`` (its valid box in the
            input), ``num_classes`` (the segmentor's), ``pred`` (the
            reference labels inside the box), ``shifts``; per integer mode
            run, ``standard`` / ``circular``: ``(K, h, w)`` labels of the
            shifted copies and ``crop``: per shift the labels of the
            ``(reference, shifted)`` windows; with ``'subpixel'``:
            ``subpixel_shifts`` and ``subpixel``: ``(K, h, w)`` labels of
            the resampled copies' logits shifted back.
        """
        start = time.perf_counter()
        metas = [s.metainfo for s in data_samples]
        if keys is None:
            keys = [image_key(m) for m in metas]
        boxes = [valid_box(m, inputs.shape[-2:]) for m in metas]
        sizes = [(b[1] - b[0], b[3] - b[2]) for b in boxes]
        integer = any(m in INTEGER_MODES for m in self.modes)
        shifts, sub_shifts = [], []
        for key, size in zip(keys, sizes):
            drawn = self.shifts_for(key) if integer else []
            shifts.append([check_shift(s, size) for s in drawn])
            if 'crop' in self.modes:
                for shift in drawn:
                    check_crop_shift(shift, size, self.crop_margin)
            if 'subpixel' in self.modes:
                sub_shifts.append([
                    check_subpixel_shift(s, size)
                    for s in self.subpixel_shifts_for(key)
                ])
        k = len(shifts[0])
        shifted = {}
        for mode in ('standard', 'circular'):
            if mode in self.modes:
                batch = shift_batch(inputs, shifts, boxes, mode)
                shifted[mode] = self._infer(
                    segmentor, batch, [m for m in metas for _ in range(k)])
        if 'crop' in self.modes:
            crops = self._crop_predictions(segmentor, inputs, metas, boxes,
                                           shifts)
        if 'subpixel' in self.modes:
            k_sub = len(sub_shifts[0])
            back = self._subpixel_predictions(segmentor, inputs, metas, boxes,
                                              sub_shifts)
        results = []
        for i, (key, box) in enumerate(zip(keys, boxes)):
            top, bottom, left, right = box
            inside = (slice(top, bottom), slice(left, right))
            result = dict(key=int(key),
                          box=box,
                          num_classes=int(segmentor.num_classes),
                          pred=reference[i][inside],
                          shifts=shifts[i])
            for mode, labels in shifted.items():
                result[mode] = labels[i * k:(i + 1) * k][(slice(None), ) +
                                                         inside]
            if 'crop' in self.modes:
                result['crop'] = crops[i]
            if 'subpixel' in self.modes:
                result['subpixel_shifts'] = sub_shifts[i]
                result['subpixel'] = back[i * k_sub:(i + 1) *
                                          k_sub][(slice(None), ) + inside]
            results.append(result)
        self.shift_time += time.perf_counter() - start
        return results

    @torch.no_grad()
    def _infer(
            self,
            segmentor,
            inputs: Tensor,
            metas: List[dict],
            post: Optional[Callable[[Tensor, int], Tensor]] = None) -> Tensor:
        """The segmentor's ``inference`` in chunks of ``shift_batch_size``,
        as labels ``(N, H, W)``; ``post(logits, begin)`` (logits at input
        size) replaces the argmax."""
        chunk = self.shift_batch_size or len(inputs)
        labels = []
        start = time.perf_counter()
        for begin in range(0, len(inputs), chunk):
            # Fresh meta dicts: slide_inference writes into the first one.
            chunk_metas = [dict(m) for m in metas[begin:begin + chunk]]
            logits = segmentor.inference(inputs[begin:begin + chunk],
                                         chunk_metas)
            if post is None:
                labels.append(
                    logits_to_labels(segmentor, logits, inputs.shape[-2:]))
            else:
                labels.append(
                    post(logits_at(segmentor, logits, inputs.shape[-2:]),
                         begin))
        labels = torch.cat(labels)
        if labels.is_cuda:
            torch.cuda.synchronize(labels.device)
        self.forward_time += time.perf_counter() - start
        return labels

    def _crop_predictions(self, segmentor, inputs: Tensor, metas: List[dict],
                          boxes: Sequence[tuple],
                          shifts: Sequence[Sequence[tuple]]) -> List[list]:
        """Per image, per shift, ``(reference, shifted)`` window labels of
        size ``(H - M) x (W - M)``; each distinct window runs once, windows
        of one size together."""
        margin = self.crop_margin
        windows = {}  # (image, top, left) -> (size, position in its group)
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
                dict(metas[i],
                     img_shape=(h, w),
                     ori_shape=(h, w),
                     pad_shape=(h, w),
                     padding_size=[0, 0, 0, 0]) for i, _, _ in keys
            ]
            labels[(h, w)] = self._infer(segmentor, batch, window_metas)
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

    def _subpixel_predictions(self, segmentor, inputs: Tensor,
                              metas: List[dict], boxes: Sequence[tuple],
                              shifts: Sequence[Sequence[tuple]]) -> Tensor:
        """``(N * K, H, W)`` labels of every resampled copy (copy
        ``i * K + k``: image ``i``, its ``k``-th shift), its logits shifted
        back into the frame of the unshifted image (inside the box)."""
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
                logits[j, :, top:bottom,
                       left:right] = fourier_shift(region, [(-dh, -dw)])[0]
            return logits_to_labels(segmentor, logits, logits.shape[-2:])

        return self._infer(segmentor,
                           batch, [m for m in metas for _ in range(k)],
                           post=shift_back)


@MODELS.register_module()
class ShiftTTAModel(BaseTTAModel):
    """Wraps a segmentor; its predictions carry shifted predictions too.

    One line in the config, beside ``ShiftConsistencyMetric`` in the
    evaluators::

        model = dict(type='ShiftTTAModel', module=segmentor_cfg,
                     num_shifts=5, max_shift=32)
        val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']),
                         dict(type='ShiftConsistencyMetric')]

    Every val/test batch is run once unshifted (the segmentor's own
    prediction, exactly as its ``predict``) and once per shift and mode;
    all shifted copies of a batch go through the segmentor's ``inference``
    (whole or sliding window, as its ``test_cfg`` says) together, in chunks
    of ``shift_batch_size``. Training (``train_step``, ``forward(mode=
    'loss')``) is the segmentor's, untouched.

    Args:
        module (dict | nn.Module): The segmentor or its config.
        shifts (Sequence[tuple[int, int]], optional): Explicit integer
            ``(dh, dw)`` shifts used for every image (standard, circular and
            crop modes). If None, ``num_shifts`` shifts are drawn per image
            from ``{-M..M}^2 \\ {(0, 0)}``. Defaults to None.
        num_shifts (int): ``K`` shifts drawn per image (integer and
            sub-pixel draws alike). Defaults to 5.
        max_shift (int): ``M``: drawn shifts lie in ``[-M, M]^2``; the crop
            windows are ``(H - M) x (W - M)`` (with explicit shifts, ``M`` is
            their largest ``|dh|``, ``|dw|``). Defaults to 32.
        seed (int): Seed of the per-image draws, which are seeded from
            ``(seed, image key)`` (see :func:`image_key`), so they do not
            depend on batch size, order or the number of processes.
            Defaults to 0.
        modes (Sequence[str]): Any of ``'standard'``, ``'circular'``,
            ``'crop'``, ``'subpixel'``. Defaults to
            ``('standard', 'circular')``.
        subpixel_shifts (Sequence[tuple[float, float]], optional): Explicit
            fractional shifts for ``'subpixel'``; None draws ``num_shifts``
            per image from ``(-1, 1)^2``. Defaults to None.
        shift_batch_size (int, optional): Most shifted images per forward;
            None: all shifted copies of a data batch at once.
            Defaults to None.
        data_preprocessor (dict, optional): Replaces the segmentor's (as in
            BaseTTAModel). Defaults to None.
    """

    def __init__(self,
                 module: Union[dict, nn.Module],
                 shifts: Optional[Sequence[Sequence[int]]] = None,
                 num_shifts: int = 5,
                 max_shift: int = 32,
                 seed: int = 0,
                 modes: Sequence[str] = DEFAULT_MODES,
                 subpixel_shifts: Optional[Sequence[Sequence[float]]] = None,
                 shift_batch_size: Optional[int] = None,
                 data_preprocessor: Optional[dict] = None):
        super().__init__(module, data_preprocessor)
        if not callable(getattr(self.module, 'inference', None)):
            raise TypeError(
                'ShiftTTAModel needs an mmseg segmentor with an '
                '`inference(inputs, batch_img_metas)` method (e.g. '
                f'EncoderDecoder); {type(self.module).__name__} has none.')
        #: The shift settings and the batched shifted forwards.
        self.predictor = ShiftPredictor(shifts=shifts,
                                        num_shifts=num_shifts,
                                        max_shift=max_shift,
                                        seed=seed,
                                        modes=modes,
                                        subpixel_shifts=subpixel_shifts,
                                        shift_batch_size=shift_batch_size)
        # The segmentor's preprocessor, so that mmengine's DDP wrapper
        # (which calls ``model.data_preprocessor``) trains as without us.
        self.data_preprocessor = self.module.data_preprocessor
        self._register_state_dict_hook(_segmentor_keys)
        self._register_load_state_dict_pre_hook(_wrapped_keys)

    def __getattr__(self, name: str):
        # Hooks and tools read segmentor attributes (num_classes,
        # decode_head, set_train_progress...) from runner.model.
        try:
            return super().__getattr__(name)
        except AttributeError:
            # __dict__ directly: during copy/unpickling _modules may not
            # exist yet, and looking it up would recurse.
            module = self.__dict__.get('_modules', {}).get('module')
            if module is None or name.startswith('__'):
                raise
            return getattr(module, name)

    # --- training and plain forwards: the segmentor's ----------------------
    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        return self.module(inputs, data_samples, mode)

    def train_step(self, data, optim_wrapper):
        return self.module.train_step(data, optim_wrapper)

    def merge_preds(self, data_samples_list):
        raise NotImplementedError(
            'ShiftTTAModel does not merge augmented views; it adds shifted '
            'predictions in val_step/test_step.')

    # --- evaluation ---------------------------------------------------------
    def val_step(self, data) -> list:
        """The segmentor's predictions plus ``shift_predictions``."""
        return self.test_step(data)

    def test_step(self, data) -> list:
        """The segmentor's predictions plus ``shift_predictions``.

        The unshifted prediction is the segmentor's ``predict``
        (``inference`` then ``postprocess_result``), computed once and
        reused as the reference of every shift.
        """
        data = self.module.data_preprocessor(data, False)
        inputs, samples = data['inputs'], data['data_samples']
        with torch.no_grad():
            logits = self.module.inference(inputs,
                                           [s.metainfo for s in samples])
            reference = logits_to_labels(self.module, logits,
                                         inputs.shape[-2:])
            results = self.module.postprocess_result(logits, samples)
            shifted = self.predictor.predict(self.module, inputs, samples,
                                             reference)
        for sample, extra in zip(results, shifted):
            sample.set_field(extra, SHIFT_FIELD)
        return results

    def check_size(self, size: Sequence[int]) -> None:
        """See :meth:`ShiftPredictor.check_size`."""
        self.predictor.check_size(size)
