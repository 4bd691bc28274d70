"""ImageCorruption transform and the corruption functions behind it."""
import cv2
import numpy as np
import pytest

from tips_mmseg.datasets.transforms import (CORRUPTIONS, ImageCorruption,
                                            apply_corruption)

NAMES = sorted(CORRUPTIONS)
REQUIRED = {
    'gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur',
    'motion_blur', 'brightness', 'contrast', 'jpeg', 'pixelate'
}


def natural_image(size=32, seed=0, channels=3):
    """Smooth colour blobs plus a little texture: like a photo, not noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((size // 8, size // 8, channels)).astype(np.float32)
    img = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    img = img.reshape(size, size, channels)
    img += rng.normal(0, 0.05, img.shape).astype(np.float32)
    return np.clip(img * 200 + 20, 0, 255).astype(np.uint8)


def corrupt(img, name, severity, seed=0, path='a/b/img_0.png'):
    results = dict(img=img.copy(), img_path=path)
    return ImageCorruption(name, severity, seed)(results)['img']


def test_all_required_corruptions_exist():
    assert REQUIRED <= set(CORRUPTIONS)


@pytest.mark.parametrize('name', NAMES)
def test_severity_zero_is_identity(name):
    img = natural_image()
    out = corrupt(img, name, 0)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('size', [32, 64])
def test_distortion_grows_with_severity(name, size):
    img = natural_image(size)
    errors = [
        np.abs(corrupt(img, name, s).astype(float) - img).mean()
        for s in range(6)
    ]
    assert errors[0] == 0
    assert all(np.diff(errors) > 0), f'{name}: {np.round(errors, 2)}'


@pytest.mark.parametrize('name', NAMES)
@pytest.mark.parametrize('shape', [(32, 32, 3), (24, 40, 3), (32, 32)])
def test_dtype_and_shape_kept(name, shape):
    img = natural_image(40, channels=3)[:shape[0], :shape[1]]
    if len(shape) == 2:
        img = np.ascontiguousarray(img[..., 0])
    out = corrupt(img, name, 3)
    assert out.dtype == np.uint8
    assert out.shape == img.shape
    assert not np.array_equal(out, img)


@pytest.mark.parametrize('name', NAMES)
def test_deterministic_per_image(name):
    img = natural_image()
    first = corrupt(img, name, 4, seed=3)
    np.testing.assert_array_equal(first, corrupt(img, name, 4, seed=3))
    # Only the file name counts: the same data in another folder matches.
    np.testing.assert_array_equal(
        first, corrupt(img, name, 4, seed=3, path='/elsewhere/img_0.png'))


@pytest.mark.parametrize('name',
                         ['gaussian_noise', 'shot_noise', 'impulse_noise'])
def test_noise_differs_across_seeds_and_images(name):
    img = natural_image()
    base = corrupt(img, name, 3, seed=0)
    assert not np.array_equal(base, corrupt(img, name, 3, seed=1))
    assert not np.array_equal(
        base, corrupt(img, name, 3, seed=0, path='a/b/img_1.png'))


def test_does_not_touch_global_rng():
    np.random.seed(123)
    expected = np.random.rand()
    np.random.seed(123)
    corrupt(natural_image(), 'gaussian_noise', 5)
    assert np.random.rand() == expected


def test_seed_falls_back_to_sample_index():
    img = natural_image()
    transform = ImageCorruption('gaussian_noise', 2)
    a = transform(dict(img=img.copy(), sample_idx=0))['img']
    b = transform(dict(img=img.copy(), sample_idx=1))['img']
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(
        a, transform(dict(img=img.copy(), sample_idx=0))['img'])


def test_unknown_name_lists_valid_ones():
    with pytest.raises(ValueError, match='gaussian_noise') as err:
        ImageCorruption('fog', 1)
    assert 'fog' in str(err.value)


@pytest.mark.parametrize('severity', [-1, 6, 2.5, True])
def test_bad_severity(severity):
    with pytest.raises(ValueError, match='0..5'):
        ImageCorruption('jpeg', severity)


def test_float_image_rejected_with_a_hint():
    with pytest.raises(TypeError, match='uint8'):
        apply_corruption(
            natural_image().astype(np.float32), 'contrast', 2,
            np.random.default_rng(0))


def test_registered_and_built_from_config():
    from mmseg.registry import TRANSFORMS
    transform = TRANSFORMS.build(
        dict(type='ImageCorruption', corruption='pixelate', severity=5))
    assert isinstance(transform, ImageCorruption)
    assert 'pixelate' in repr(transform)
