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
