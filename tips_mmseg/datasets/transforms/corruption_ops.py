"""Image corruptions in the style of ImageNet-C (Hendrycks & Dietterich).

Every function here has the signature ``fn(img, severity, rng) -> img``:

- ``img``: ``uint8`` array of shape (H, W) or (H, W, C), as mmcv loads it
  (BGR for colour images; the corruptions below do not depend on the channel
  order except ``brightness``, which converts BGR to HSV).
- ``severity``: 1 (mild) .. 5 (strong). Severity 0 is handled by
  :func:`apply_corruption` (the image is returned unchanged).
- ``rng``: a :class:`numpy.random.Generator`; all randomness comes from it,
  never from the global RNGs, so a caller that seeds it per image gets the
  same corrupted image in every run, rank and worker.

The strength parameters are chosen so that distortion grows with severity
for every corruption (tests check this) and severity 5 is hard but still
recognisable at 32..512 px.
"""
from typing import Callable, Dict

import cv2
import numpy as np

MAX_SEVERITY = 5

# One parameter per severity 1..5 (index severity - 1).
_GAUSSIAN_SIGMA = (0.04, 0.07, 0.11, 0.16, 0.24)  # std, image in [0, 1]
_SHOT_PHOTONS = (80.0, 35.0, 15.0, 7.0, 3.0)  # photons at full intensity
_IMPULSE_FRACTION = (0.01, 0.03, 0.06, 0.10, 0.16)  # share of salt+pepper
_DEFOCUS_RADIUS = (1.0, 1.5, 2.5, 3.5, 5.0)  # disk radius in pixels
_MOTION_LENGTH = (3, 5, 9, 13, 19)  # streak length in pixels
_BRIGHTNESS_SHIFT = (0.1, 0.2, 0.3, 0.4, 0.5)  # added to HSV value
_CONTRAST_FACTOR = (0.6, 0.45, 0.3, 0.2, 0.1)  # scale around the mean
_JPEG_QUALITY = (30, 18, 12, 8, 4)  # cv2 JPEG quality
_PIXELATE_SCALE = (0.7, 0.55, 0.4, 0.3, 0.2)  # side of the coarse grid


def _to_unit(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) / 255.0


def _to_uint8(img: np.ndarray) -> np.ndarray:
    # Round (not truncate) so that tiny float errors never shift a pixel.
    return np.clip(np.rint(img * 255.0), 0, 255).astype(np.uint8)


def _filter(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    # Reflect at the border: zero padding would darken the image edge and
    # add a distortion that is not blur.
    out = cv2.filter2D(
        img.astype(np.float32), -1, kernel, borderType=cv2.BORDER_REFLECT_101)
    return out.reshape(img.shape)


def gaussian_noise(img: np.ndarray, severity: int,
                   rng: np.random.Generator) -> np.ndarray:
    """Additive white Gaussian noise (sensor read noise)."""
    x = _to_unit(img)
    sigma = _GAUSSIAN_SIGMA[severity - 1]
    return _to_uint8(x + rng.normal(0.0, sigma, size=x.shape))


def shot_noise(img: np.ndarray, severity: int,
               rng: np.random.Generator) -> np.ndarray:
    """Poisson (photon counting) noise: stronger in bright regions."""
    x = _to_unit(img)
    photons = _SHOT_PHOTONS[severity - 1]
    return _to_uint8(rng.poisson(x * photons) / photons)


def impulse_noise(img: np.ndarray, severity: int,
                  rng: np.random.Generator) -> np.ndarray:
    """Salt-and-pepper noise on independent pixel values."""
    out = img.copy()
    fraction = _IMPULSE_FRACTION[severity - 1]
    u = rng.random(size=img.shape)
    out[u < fraction / 2] = 0
    out[(u >= fraction / 2) & (u < fraction)] = 255
    return out


def _disk_kernel(radius: float) -> np.ndarray:
    # Anti-aliased disk: sample the disk on a 4x finer grid and average, so
    # that fractional radii give distinct, growing kernels.
    size = 2 * int(np.ceil(radius)) + 1
    fine = 4
    coords = (np.arange(size * fine) + 0.5) / fine - size / 2
    yy, xx = np.meshgrid(coords, coords, indexing='ij')
    inside = (yy**2 + xx**2 <= radius**2).astype(np.float32)
    kernel = inside.reshape(size, fine, size, fine).mean(axis=(1, 3))
    return kernel / kernel.sum()


def defocus_blur(img: np.ndarray, severity: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Out-of-focus blur: convolution with a disk (the lens aperture)."""
    kernel = _disk_kernel(_DEFOCUS_RADIUS[severity - 1])
    return _to_uint8(_filter(_to_unit(img), kernel))


def _line_kernel(length: int, angle_deg: float) -> np.ndarray:
    # A centred line segment drawn on a 8x finer canvas and box-downsampled,
    # so every angle gives a kernel of the same total length.
    fine = 8
    size = length * fine
    canvas = np.zeros((size, size), np.float32)
    centre = (size - 1) / 2
    half = (length - 1) / 2 * fine
    dx = half * np.cos(np.deg2rad(angle_deg))
    dy = half * np.sin(np.deg2rad(angle_deg))
    p1 = (int(round(centre - dx)), int(round(centre - dy)))
    p2 = (int(round(centre + dx)), int(round(centre + dy)))
    cv2.line(canvas, p1, p2, 1.0, thickness=fine)
    kernel = canvas.reshape(length, fine, length, fine).mean(axis=(1, 3))
    return kernel / kernel.sum()


def motion_blur(img: np.ndarray, severity: int,
                rng: np.random.Generator) -> np.ndarray:
    """Camera shake: a linear streak with a per-image random direction."""
    angle = rng.uniform(-90.0, 90.0)
    kernel = _line_kernel(_MOTION_LENGTH[severity - 1], angle)
    return _to_uint8(_filter(_to_unit(img), kernel))


def brightness(img: np.ndarray, severity: int,
               rng: np.random.Generator) -> np.ndarray:
    """Over-exposure: raise the HSV value channel (hue is kept)."""
    x = _to_unit(img)
    shift = _BRIGHTNESS_SHIFT[severity - 1]
    if x.ndim == 3 and x.shape[2] == 3:
        hsv = cv2.cvtColor(x, cv2.COLOR_BGR2HSV)
        hsv[..., 2] = np.clip(hsv[..., 2] + shift, 0.0, 1.0)
        return _to_uint8(cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR))
    # Grey or multi-spectral images have no hue: brighten every channel.
    return _to_uint8(x + shift)


def contrast(img: np.ndarray, severity: int,
             rng: np.random.Generator) -> np.ndarray:
    """Low contrast: pull every value towards the image mean."""
    x = _to_unit(img)
    mean = x.mean()
    return _to_uint8((x - mean) * _CONTRAST_FACTOR[severity - 1] + mean)


def jpeg(img: np.ndarray, severity: int,
         rng: np.random.Generator) -> np.ndarray:
    """JPEG compression artefacts (blocking, ringing, colour bleeding)."""
    if img.ndim == 3 and img.shape[2] not in (1, 3):
        raise ValueError('jpeg corruption needs a grey or 3-channel image, '
                         f'got {img.shape[2]} channels.')
    quality = _JPEG_QUALITY[severity - 1]
    ok, buffer = cv2.imencode('.jpg', img,
                              [int(cv2.IMWRITE_JPEG_QUALITY), quality])
    if not ok:
        raise RuntimeError('cv2 could not JPEG-encode the image.')
    flag = cv2.IMREAD_GRAYSCALE if img.ndim == 2 or img.shape[2] == 1 \
        else cv2.IMREAD_COLOR
    return cv2.imdecode(buffer, flag).reshape(img.shape)


def pixelate(img: np.ndarray, severity: int,
             rng: np.random.Generator) -> np.ndarray:
    """Low resolution: average onto a coarse grid, enlarge with nearest."""
    h, w = img.shape[:2]
    scale = _PIXELATE_SCALE[severity - 1]
    small = cv2.resize(
        img, (max(1, round(w * scale)), max(1, round(h * scale))),
        interpolation=cv2.INTER_AREA)
    return cv2.resize(
        small, (w, h), interpolation=cv2.INTER_NEAREST).reshape(img.shape)


CORRUPTIONS: Dict[str, Callable[[np.ndarray, int, np.random.Generator],
                                np.ndarray]] = {
    'gaussian_noise': gaussian_noise,
    'shot_noise': shot_noise,
    'impulse_noise': impulse_noise,
    'defocus_blur': defocus_blur,
    'motion_blur': motion_blur,
    'brightness': brightness,
    'contrast': contrast,
    'jpeg': jpeg,
    'pixelate': pixelate,
}


def check_corruption(name: str, severity: int) -> None:
    """Raise a ValueError naming the fix if ``name`` or ``severity`` is bad.

    Args:
        name (str): Corruption name, a key of :data:`CORRUPTIONS`.
        severity (int): 0 (identity) .. 5.
    """
    if name not in CORRUPTIONS:
        raise ValueError(f'Unknown corruption {name!r}; valid names are: '
                         f'{", ".join(CORRUPTIONS)}.')
    if isinstance(severity, bool) or not isinstance(
            severity, (int, np.integer)) or not 0 <= severity <= MAX_SEVERITY:
        raise ValueError(f'Corruption severity must be an integer in '
                         f'0..{MAX_SEVERITY} (0 = unchanged), got '
                         f'{severity!r}.')


def apply_corruption(img: np.ndarray, name: str, severity: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Corrupt one image.

    Args:
        img (np.ndarray): ``uint8`` image, (H, W) or (H, W, C).
        name (str): Corruption name, a key of :data:`CORRUPTIONS`.
        severity (int): 0 (returns ``img`` itself, unchanged) .. 5.
        rng (np.random.Generator): Source of all randomness.

    Returns:
        np.ndarray: The corrupted ``uint8`` image, same shape as ``img``.
    """
    check_corruption(name, severity)
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise TypeError(
            'Corruptions work on uint8 images as LoadImageFromFile returns '
            f'them, got {getattr(img, "dtype", type(img))}. Put the '
            'corruption before any transform that converts to float (and '
            'keep LoadImageFromFile(to_float32=False)).')
    if severity == 0:
        return img
    out = CORRUPTIONS[name](img, int(severity), rng)
    assert out.dtype == np.uint8 and out.shape == img.shape, (name, out.shape)
    return out
