"""Test-pipeline transform that corrupts the loaded image (ImageNet-C style).

The corruption functions live in :mod:`.corruption_ops`; this module only
adapts them to mmcv's transform interface and seeds them per image.
"""
import os.path as osp
import zlib
from typing import Optional, Union

import numpy as np
from mmcv.transforms import BaseTransform
from mmseg.registry import TRANSFORMS

from .corruption_ops import apply_corruption, check_corruption


def per_image_seed(seed: int,
                   key: Union[str, int, None]) -> np.random.SeedSequence:
    """A seed that depends only on ``seed`` and the identity of the image.

    The file name (not the full path) identifies an image, so the same data
    in another folder, on another machine, rank or worker, in another batch
    order gets the same random draws; Python's ``hash`` is salted per process
    and therefore avoided.

    Args:
        seed (int): Global seed of the study.
        key (str | int | None): Image path (its base name is used) or index.

    Returns:
        np.random.SeedSequence: Feed to ``np.random.default_rng``.
    """
    if isinstance(key, str):
        key = zlib.crc32(osp.basename(key).encode('utf-8'))
    elif key is None:
        key = 0
    return np.random.SeedSequence([int(seed), int(key)])


@TRANSFORMS.register_module()
class ImageCorruption(BaseTransform):
    """Corrupt ``results['img']`` with a named corruption at a severity.

    Put it right after ``LoadImageFromFile`` in the test pipeline so the
    corruption happens at the image's original resolution, as a camera or
    codec would, e.g.
    ``dict(type='ImageCorruption', corruption='jpeg', severity=3)``.

    Required keys: ``img`` (uint8). Used if present: ``img_path`` (else
    ``sample_idx``) to seed the randomness per image. Modified key: ``img``.

    Args:
        corruption (str): One of ``gaussian_noise, shot_noise,
            impulse_noise, defocus_blur, motion_blur, brightness, contrast,
            jpeg, pixelate``.
        severity (int): 1 (mild) .. 5 (strong); 0 leaves the image exactly
            unchanged. Defaults to 3.
        seed (int): Global seed; combined with the image's file name so the
            result is the same for an image in every run. Defaults to 0.
    """

    def __init__(self,
                 corruption: str,
                 severity: int = 3,
                 seed: int = 0) -> None:
        check_corruption(corruption, severity)
        self.corruption = corruption
        self.severity = int(severity)
        self.seed = int(seed)

    def transform(self, results: dict) -> Optional[dict]:
        key = results.get('img_path', results.get('sample_idx'))
        rng = np.random.default_rng(per_image_seed(self.seed, key))
        results['img'] = apply_corruption(results['img'], self.corruption,
                                          self.severity, rng)
        return results

    def __repr__(self) -> str:
        return (f'{self.__class__.__name__}(corruption={self.corruption!r}, '
                f'severity={self.severity}, seed={self.seed})')


__all__ = ['ImageCorruption', 'per_image_seed']
