"""Geometry of image shifts: shifting inputs, overlaps, seeded sampling.

Conventions (see ``docs/evaluation.md``): a shift ``(dh, dw)`` moves
content down by ``dh`` rows and right by ``dw`` columns, i.e.
``x_d[i, j] = x[i - dh, j - dw]``. ``'standard'`` fills what enters the frame
with ``fill`` (0 for normalized inputs = the mean colour); ``'circular'``
rolls the image. The evaluation's two further protocols live here too:
two windows of one image (``crop_windows``) and fractional shifts by
band-limited resampling (``fourier_shift``).
"""
import math
from typing import List, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

SHIFT_MODES = ('standard', 'circular')
#: Every protocol of the shift-consistency evaluation; ``mASSC_boundary``
#: comes with ``'standard'``.
EVAL_MODES = ('standard', 'circular', 'crop', 'subpixel')
#: What runs when ``modes`` is not given.
DEFAULT_MODES = ('standard', 'circular')
#: The modes driven by the integer shifts.
INTEGER_MODES = ('standard', 'circular', 'crop')

Shift = Tuple[int, int]


def check_eval_modes(modes: Sequence[str]) -> tuple:
    """Validate evaluation ``modes``; returns them as a tuple in the fixed
    order of :data:`EVAL_MODES`."""
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


def check_integer_shifts(shifts: Sequence[Sequence[int]]) -> List[Shift]:
    """An explicit list of whole-pixel shifts as tuples of ints."""
    checked = _check_shift_pairs(shifts, 'shifts', 'shift',
                                 'num_shifts shifts per image')
    for shift in checked:
        if any(float(v) != int(v) for v in shift):
            raise ValueError(
                f'shifts are whole pixels, got {shift!r}; for '
                "fractional shifts add 'subpixel' to modes and give them "
                'as subpixel_shifts.')
    return [(int(dh), int(dw)) for dh, dw in checked]


def check_subpixel_shifts(
        shifts: Sequence[Sequence[float]]) -> List[Tuple[float, float]]:
    """An explicit list of fractional shifts as tuples of floats."""
    checked = _check_shift_pairs(shifts, 'subpixel_shifts', 'sub-pixel shift',
                                 'num_shifts shifts in (-1, 1)^2 per image')
    return [(float(dh), float(dw)) for dh, dw in checked]


def valid_box(metainfo: dict, size: Sequence[int]) -> tuple:
    """``(top, bottom, left, right)`` of the image inside the padded input.

    Uses the padding the data preprocessor recorded, read as mmseg's
    ``postprocess_result`` reads it.
    """
    padding = metainfo.get('img_padding_size',
                           metainfo.get('padding_size', [0, 0, 0, 0]))
    left, right, top, bottom = (int(p) for p in padding)
    return top, int(size[0]) - bottom, left, int(size[1]) - right


def check_mode(mode: str) -> str:
    """Return ``mode`` if it is a known shift mode, else raise ValueError."""
    if mode not in SHIFT_MODES:
        raise ValueError(f'Unknown shift mode {mode!r}; use one of '
                         f'{SHIFT_MODES}.')
    return mode


def check_shift(shift: Sequence[int], size: Sequence[int]) -> Shift:
    """Validate one shift against an image size.

    Args:
        shift (Sequence[int]): ``(dh, dw)`` in pixels.
        size (Sequence[int]): Image size ``(H, W)``.

    Returns:
        tuple[int, int]: The shift as a tuple of Python ints.

    Raises:
        ValueError: If the shift is not a pair of ints or if ``|dh| >= H`` or
            ``|dw| >= W`` (nothing of the image would overlap).
    """
    if len(shift) != 2 or any(int(s) != s for s in shift):
        raise ValueError(f'A shift must be a pair of ints (dh, dw), '
                         f'got {shift!r}.')
    dh, dw = int(shift[0]), int(shift[1])
    h, w = int(size[0]), int(size[1])
    if abs(dh) >= h or abs(dw) >= w:
        raise ValueError(
            f'shift ({dh}, {dw}) is larger than the image {h}x{w}; use '
            f'max_shift < {min(h, w)} (or smaller explicit shifts).')
    return dh, dw


def overlap_slices(shift: Shift, size: Sequence[int]) -> Tuple[tuple, tuple]:
    """Slices of the overlap ``O_d`` in the shifted and the original frame.

    For every pixel ``p`` of the shifted image whose source ``p - d`` lies in
    the image, ``shifted[dst] `` and ``original[src]`` line up pixel by pixel.

    Args:
        shift (tuple[int, int]): ``(dh, dw)``; must satisfy
            :func:`check_shift`.
        size (Sequence[int]): Image size ``(H, W)``.

    Returns:
        tuple: ``(dst, src)``, each a ``(row_slice, col_slice)`` pair.
    """
    dh, dw = shift
    h, w = size
    dst = (slice(max(dh, 0), h + min(dh, 0)), slice(max(dw, 0),
                                                    w + min(dw, 0)))
    src = (slice(max(-dh, 0),
                 h - max(dh, 0)), slice(max(-dw, 0), w - max(dw, 0)))
    return dst, src


def shift_blocks(shift: Shift,
                 size: Sequence[int],
                 mode: str = 'standard') -> List[Tuple[tuple, tuple]]:
    """Rectangles where the shifted image equals the original, moved.

    Standard shifts have one block, the overlap of :func:`overlap_slices`;
    a circular shift (a roll) is the union of up to four blocks. Copying or
    comparing block by block avoids building a rolled intermediate.

    Returns:
        list[tuple]: ``(dst, src)`` pairs of ``(row_slice, col_slice)``.
    """
    check_mode(mode)
    if mode == 'standard':
        return [overlap_slices(shift, size)]
    h, w = size

    def axis_parts(d, n):
        d %= n  # roll by d: dst [d, n) <- src [0, n - d), dst [0, d) <- rest
        parts = [(slice(d, n), slice(0, n - d))]
        if d:
            parts.append((slice(0, d), slice(n - d, n)))
        return parts

    return [((rd, cd), (rs, cs)) for rd, rs in axis_parts(shift[0], h)
            for cd, cs in axis_parts(shift[1], w)]


def shift_image(image: Tensor,
                shift: Shift,
                mode: str = 'standard',
                fill: float = 0) -> Tensor:
    """Shift one image (or label map) over its last two dimensions.

    Args:
        image (Tensor): ``(..., H, W)``.
        shift (tuple[int, int]): ``(dh, dw)``.
        mode (str): ``'standard'`` or ``'circular'``. Defaults to
            ``'standard'``.
        fill (float): Value entering the frame in standard mode (0 for
            normalized images, the ignore index for labels). Defaults to 0.

    Returns:
        Tensor: The shifted image, same shape and dtype.
    """
    size = image.shape[-2:]
    shift = check_shift(shift, size)
    out = torch.full_like(image, fill)
    _copy_blocks(out, image, shift, mode)
    return out


def _copy_blocks(out: Tensor, image: Tensor, shift: Shift, mode: str) -> None:
    for dst, src in shift_blocks(shift, image.shape[-2:], mode):
        out[..., dst[0], dst[1]] = image[..., src[0], src[1]]


def shift_batch(inputs: Tensor,
                shifts_per_image: Sequence[Sequence[Shift]],
                valid_boxes: Sequence[Tuple[int, int, int, int]],
                mode: str = 'standard',
                fill: float = 0) -> Tensor:
    """Shifted copies of every image of a (padded) batch, in one tensor.

    Each image is shifted inside its own valid region (the part that is not
    the data preprocessor's batch padding), so images of different sizes
    padded into one batch are each shifted as the image they are; the padding
    stays as it was.

    Args:
        inputs (Tensor): ``(N, C, H, W)`` network inputs.
        shifts_per_image (Sequence[Sequence[tuple]]): ``K`` shifts per image
            (the same ``K`` for every image).
        valid_boxes (Sequence[tuple]): Per image ``(top, bottom, left,
            right)``: rows ``top:bottom`` and columns ``left:right`` hold the
            image.
        mode (str): ``'standard'`` or ``'circular'``. Defaults to
            ``'standard'``.
        fill (float): Standard-mode fill. Defaults to 0.

    Returns:
        Tensor: ``(N * K, C, H, W)``; copy ``i * K + k`` is image ``i`` under
        its ``k``-th shift.
    """
    num_shifts = {len(s) for s in shifts_per_image}
    if len(num_shifts) != 1:
        raise ValueError('Every image needs the same number of shifts, got '
                         f'{sorted(num_shifts)}.')
    k = num_shifts.pop()
    # Padding keeps the batch's pad value (0 after normalization); only the
    # valid box is rewritten, straight from the source: no intermediates.
    out = inputs.new_full((len(inputs) * k, ) + inputs.shape[1:], fill)
    for i, (shifts, box) in enumerate(zip(shifts_per_image, valid_boxes)):
        top, bottom, left, right = box
        if (bottom - top, right - left) != tuple(inputs.shape[-2:]):
            out[i * k:(i + 1) * k] = inputs[i]
        image = inputs[i, :, top:bottom, left:right]
        for j, shift in enumerate(shifts):
            region = out[i * k + j, :, top:bottom, left:right]
            if mode == 'standard':
                region.fill_(fill)
            _copy_blocks(region, image, check_shift(shift, image.shape[-2:]),
                         mode)
    return out


def sample_shifts(num_shifts: int, max_shift: int, seed: int,
                  image_index: int) -> List[Shift]:
    """Draw shifts for one image, reproducibly from ``(seed, image_index)``.

    Shifts are drawn uniformly from ``{-M..M}^2`` minus ``(0, 0)``, without
    replacement while there are enough candidates. Because the generator is
    seeded from the image index only, the draw does not depend on batch size,
    order or the number of processes.

    Args:
        num_shifts (int): ``K``, how many shifts.
        max_shift (int): ``M``, the largest ``|dh|`` and ``|dw|``.
        seed (int): Global seed.
        image_index (int): Index of the image in its dataset (non-negative).

    Returns:
        list[tuple[int, int]]: ``K`` shifts ``(dh, dw)``.
    """
    if num_shifts < 1 or max_shift < 1:
        raise ValueError('num_shifts and max_shift must be >= 1, got '
                         f'{num_shifts} and {max_shift}.')
    side = 2 * max_shift + 1
    num_candidates = side * side - 1
    rng = np.random.default_rng([int(seed), int(image_index)])
    picks = rng.choice(num_candidates,
                       size=num_shifts,
                       replace=num_shifts > num_candidates)
    center = num_candidates // 2  # flat index of (0, 0), skipped below
    shifts = []
    for pick in picks.tolist():
        flat = pick + (pick >= center)
        shifts.append((flat // side - max_shift, flat % side - max_shift))
    return shifts


def shift_grid(max_shift: float, step: float = 1) -> List[tuple]:
    """All shifts on a regular grid over ``[-M, M]^2`` (for the map).

    Args:
        max_shift (float): ``M``.
        step (float): Grid spacing in pixels (fractional for a sub-pixel
            map); the grid always contains 0. Defaults to 1.

    Returns:
        list[tuple]: Row-major shifts, ``dh`` outer, ``dw`` inner.
    """
    axis = grid_axis(max_shift, step)
    return [(dh, dw) for dh in axis for dw in axis]


def grid_axis(max_shift: float, step: float = 1) -> list:
    """Offsets ``-M..M`` every ``step`` pixels, symmetric and containing 0.

    Integers give integer offsets; a fractional ``step`` or ``max_shift``
    (sub-pixel maps) gives floats ``k * step``.
    """
    if step <= 0:
        raise ValueError(f'step must be > 0, got {step}.')
    if float(step).is_integer() and float(max_shift).is_integer():
        half = list(range(0, int(max_shift) + 1, int(step)))
    else:
        count = int(math.floor(max_shift / step + 1e-9))
        half = [round(k * step, 9) for k in range(count + 1)]
    return [-v for v in reversed(half[1:])] + half


# --- crop protocol: two windows of the same image ---------------------------
def crop_margin(shifts: Sequence[Shift]) -> int:
    """``M`` of the crop protocol: the largest ``|dh|`` or ``|dw|``."""
    return max(max(abs(int(dh)), abs(int(dw))) for dh, dw in shifts)


def check_crop_shift(shift: Sequence[int], size: Sequence[int],
                     margin: int) -> Shift:
    """Validate a crop-protocol shift: windows of ``(H - M) x (W - M)``
    must still overlap when offset by ``shift``, i.e. ``2 M < min(H, W)``."""
    dh, dw = check_shift(shift, size)
    h, w = int(size[0]), int(size[1])
    if max(abs(dh), abs(dw)) > margin or 2 * margin >= min(h, w):
        raise ValueError(
            f'crop shift ({dh}, {dw}) with windows of ({h} - {margin}) x '
            f'({w} - {margin}) px leaves no common area in the image '
            f'{h}x{w}; the crop protocol needs 2 * max_shift < '
            f'{min(h, w)}: use max_shift <= {(min(h, w) - 1) // 2} (or '
            'smaller explicit shifts).')
    return dh, dw


def crop_window_corners(shift: Shift) -> Tuple[Shift, Shift]:
    """Top-left corners of the reference and the shifted window.

    The shifted window sits ``shift`` up-left of the reference, so its
    content is the reference's moved by ``shift``:
    ``B[i, j] = A[i - dh, j - dw]``; both corners lie in ``[0, M]^2``.
    """
    dh, dw = shift
    return (max(dh, 0), max(dw, 0)), (max(-dh, 0), max(-dw, 0))


# --- sub-pixel protocol: band-limited resampling ----------------------------
def check_subpixel_shift(shift: Sequence[float],
                         size: Sequence[int]) -> Tuple[float, float]:
    """Validate a fractional shift: the interior left after excluding
    ``ceil(|d|) + 1`` px on every side must not be empty."""
    if len(shift) != 2:
        raise ValueError(f'A sub-pixel shift must be a pair (dh, dw), got '
                         f'{shift!r}.')
    dh, dw = float(shift[0]), float(shift[1])
    h, w = int(size[0]), int(size[1])
    if (h - 2 * interior_border(dh) < 1 or w - 2 * interior_border(dw) < 1
            or not (math.isfinite(dh) and math.isfinite(dw))):
        raise ValueError(
            f'sub-pixel shift ({dh}, {dw}) leaves no interior in the image '
            f'{h}x{w} (a border of ceil(|d|) + 1 px is excluded); use '
            f'shifts with |d| < {max((min(h, w) - 1) // 2 - 1, 0)}.')
    return dh, dw


def interior_border(delta: float) -> int:
    """Pixels excluded at each side for a fractional shift ``delta``."""
    return int(math.ceil(abs(delta))) + 1


def fourier_shift(image: Tensor, shifts: Sequence[Sequence[float]]) -> Tensor:
    """Shift an image by fractional amounts with band-limited resampling.

    The image is extended by its mirror images to ``2H x 2W`` (so the
    periodic signal the DFT assumes has no jump at the border and nothing
    wraps around from the opposite side), multiplied in the Fourier domain
    by the phase ``exp(-2 pi i (f_h dh + f_w dw))`` and cropped back to
    ``H x W``. An integer shift therefore moves the content exactly, with a
    mirrored border (``x[-1] = x[0]``, ``x[-2] = x[1]``...). The Nyquist
    terms are treated symmetrically (the real part is kept).

    Args:
        image (Tensor): ``(C, H, W)``, floating point.
        shifts (Sequence[tuple[float, float]]): ``K`` shifts ``(dh, dw)``,
            same convention as integer shifts (content moves down/right).

    Returns:
        Tensor: ``(K, C, H, W)``, the shifted copies, ``image``'s dtype.
    """
    h, w = image.shape[-2:]
    ext = torch.cat([image, image.flip(-2)], dim=-2)
    ext = torch.cat([ext, ext.flip(-1)], dim=-1)
    compute = torch.float64 if image.dtype == torch.float64 else torch.float32
    spectrum = torch.fft.fft2(ext.to(compute))
    delta = torch.as_tensor([[float(dh), float(dw)] for dh, dw in shifts],
                            dtype=compute,
                            device=image.device)
    freq_h = torch.fft.fftfreq(2 * h, dtype=compute, device=image.device)
    freq_w = torch.fft.fftfreq(2 * w, dtype=compute, device=image.device)
    angle = -2 * math.pi * (delta[:, 0, None, None] * freq_h[None, :, None] +
                            delta[:, 1, None, None] * freq_w[None, None, :])
    phase = torch.polar(torch.ones_like(angle), angle)
    shifted = torch.fft.ifft2(spectrum[None] * phase[:, None]).real
    return shifted[..., :h, :w].to(image.dtype)


def sample_subpixel_shifts(num_shifts: int, seed: int,
                           image_index: int) -> List[Tuple[float, float]]:
    """Draw ``K`` fractional shifts uniformly from ``(-1, 1)^2`` for one
    image, reproducibly from ``(seed, image_index)`` (its own stream, so the
    integer draws of :func:`sample_shifts` are not disturbed)."""
    if num_shifts < 1:
        raise ValueError(f'num_shifts must be >= 1, got {num_shifts}.')
    rng = np.random.default_rng([int(seed), int(image_index), 1])
    values = rng.uniform(-1.0, 1.0, size=(num_shifts, 2))
    return [(float(dh), float(dw)) for dh, dw in values]
