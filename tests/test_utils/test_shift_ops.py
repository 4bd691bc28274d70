import pytest
import torch

from tips_mmseg.utils.shift_ops import (check_shift, grid_axis,
                                             sample_shifts, shift_batch,
                                             shift_grid, shift_image)


def test_standard_shift_moves_content_and_fills():
    x = torch.arange(16.).view(1, 4, 4)
    y = shift_image(x, (1, -2), 'standard', fill=-1)
    # x_d[i, j] = x[i - 1, j + 2]
    assert y[0, 1, 0] == x[0, 0, 2]
    assert y[0, 3, 1] == x[0, 2, 3]
    assert (y[0, 0] == -1).all() and (y[0, :, 2:] == -1).all()


def test_circular_shift_is_roll():
    x = torch.arange(12.).view(3, 4)
    assert torch.equal(shift_image(x, (2, 1), 'circular'),
                       torch.roll(x, (2, 1), (0, 1)))


def test_shift_larger_than_image_is_a_clear_error():
    with pytest.raises(ValueError, match=r'shift \(32, 0\) is larger than '
                       r'the image 32x40; use max_shift < 32'):
        check_shift((32, 0), (32, 40))
    with pytest.raises(ValueError, match='Unknown shift mode'):
        shift_image(torch.zeros(2, 2), (0, 0), 'reflect')


def test_sampled_shifts_are_seeded_per_image_and_never_zero():
    a = sample_shifts(48, 3, seed=0, image_index=7)
    assert a == sample_shifts(48, 3, seed=0, image_index=7)
    assert a != sample_shifts(48, 3, seed=0, image_index=8)
    assert a != sample_shifts(48, 3, seed=1, image_index=7)
    assert len(set(a)) == len(a) == 48  # all non-zero shifts, no repeats
    assert (0, 0) not in a
    assert all(abs(dh) <= 3 and abs(dw) <= 3 for dh, dw in a)


def test_grid_is_symmetric_and_contains_zero():
    assert grid_axis(5, 2) == [-4, -2, 0, 2, 4]
    assert len(shift_grid(4, 2)) == 25 and (0, 0) in shift_grid(4, 2)


def test_shift_batch_shifts_each_image_inside_its_valid_box():
    inputs = torch.zeros(2, 1, 6, 6)
    inputs[0, 0, :6, :6] = torch.arange(36.).view(6, 6)
    inputs[1, 0, :4, :3] = torch.arange(1., 13.).view(4, 3)  # padded image
    out = shift_batch(inputs, [[(1, 1)], [(0, 1)]], [(0, 6, 0, 6),
                                                      (0, 4, 0, 3)])
    assert out.shape == (2, 1, 6, 6)
    assert torch.equal(out[0, 0], shift_image(inputs[0, 0], (1, 1)))
    expected = shift_image(inputs[1, 0, :4, :3], (0, 1))
    assert torch.equal(out[1, 0, :4, :3], expected)
    assert (out[1, 0, 4:] == 0).all() and (out[1, 0, :, 3:] == 0).all()


def test_float_grid_for_subpixel_maps():
    assert grid_axis(1, 0.5) == [-1.0, -0.5, 0.0, 0.5, 1.0]
    assert grid_axis(0.6, 0.25) == [-0.5, -0.25, 0.0, 0.25, 0.5]
    assert (0.25, -0.5) in shift_grid(0.5, 0.25)


def test_crop_windows_and_their_limits():
    from tips_mmseg.utils.shift_ops import (check_crop_shift, crop_margin,
                                            crop_window_corners)
    assert crop_margin([(2, -3), (1, 0)]) == 3
    # B = A moved by (2, -3): A at (2, 0), B at (0, 3), both in [0, 3]^2
    assert crop_window_corners((2, -3)) == ((2, 0), (0, 3))
    x = torch.arange(64.).view(8, 8)
    (ta, la), (tb, lb) = crop_window_corners((2, -3))
    a, b = x[ta:ta + 5, la:la + 5], x[tb:tb + 5, lb:lb + 5]
    assert torch.equal(b[2:, :2], a[:3, 3:])  # B[i, j] = A[i - 2, j + 3]
    assert check_crop_shift((3, -3), (7, 9), 3) == (3, -3)
    with pytest.raises(ValueError, match=r'2 \* max_shift < 6: use '
                       r'max_shift <= 2'):
        check_crop_shift((3, 0), (6, 9), 3)


def test_fourier_shift_integer_is_a_mirrored_shift():
    from tips_mmseg.utils.shift_ops import fourier_shift
    x = torch.randn(2, 5, 6, dtype=torch.float64)

    def mirror(v, n):  # x[-1] = x[0], x[n] = x[n - 1]
        return -v - 1 if v < 0 else (2 * n - 1 - v if v >= n else v)

    for dh, dw in [(2, -1), (-4, 5), (0, 0)]:
        expected = torch.empty_like(x)
        for i in range(5):
            for j in range(6):
                expected[:, i, j] = x[:, mirror(i - dh, 5), mirror(j - dw, 6)]
        out = fourier_shift(x, [(dh, dw)])
        assert out.shape == (1, 2, 5, 6) and out.dtype == x.dtype
        assert torch.allclose(out[0], expected, atol=1e-10)


def test_fourier_shift_fractional_properties():
    from tips_mmseg.utils.shift_ops import fourier_shift
    flat = torch.full((1, 6, 8), 3.0)
    assert torch.allclose(fourier_shift(flat, [(0.3, -0.7)]), flat, atol=1e-5)
    # a band-limited ramp along columns moves by the fraction in the middle
    cols = torch.cos(torch.arange(32.) * torch.pi / 32)[None, None].expand(
        1, 4, 32)
    half = fourier_shift(cols, [(0.0, 0.5)])[0, 0, 0]
    expected = torch.cos((torch.arange(32.) - 0.5) * torch.pi / 32)
    assert torch.allclose(half[4:-4], expected[4:-4], atol=1e-3)
    # K shifts at once equal K single calls
    x = torch.randn(3, 7, 9)
    both = fourier_shift(x, [(0.25, 0.5), (-0.5, 0.1)])
    assert torch.allclose(both[1], fourier_shift(x, [(-0.5, 0.1)])[0],
                          atol=1e-5)


def test_subpixel_draws_are_seeded_fractional_and_separate():
    from tips_mmseg.utils.shift_ops import (check_subpixel_shift,
                                            sample_subpixel_shifts)
    a = sample_subpixel_shifts(20, seed=0, image_index=3)
    assert a == sample_subpixel_shifts(20, seed=0, image_index=3)
    assert a != sample_subpixel_shifts(20, seed=0, image_index=4)
    assert all(-1 < v < 1 for s in a for v in s)
    assert sample_shifts(5, 3, 0, 3) == sample_shifts(5, 3, 0, 3)
    with pytest.raises(ValueError, match='leaves no interior in the image '
                       '5x40'):
        check_subpixel_shift((1.5, 0), (5, 40))
