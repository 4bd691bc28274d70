"""Numbers of a consistency map: grid layout, mean, even-odd gap."""
import numpy as np
import pytest

from tests.helpers import parity_heatmap
from tips_mmseg.analysis import consistency_grid, map_mean, odd_even_gap


def test_map_mean_and_odd_even_gap_by_hand():
    heatmap = parity_heatmap(96., 90.)
    # 4 even off-centre shifts at 96, 4 odd ones at 90; (0, 0) left out.
    assert map_mean(heatmap) == pytest.approx(93.)
    assert odd_even_gap(heatmap) == pytest.approx(6.)
    assert odd_even_gap(parity_heatmap(97.)) == pytest.approx(0.)
    # The input is not changed by leaving the centre out.
    assert heatmap['grid'][1][1] == 100.


def test_consistency_grid_rows_dh_columns_dw():
    grid = consistency_grid({(-2, 0): 80., (0, 2): 90., (0, 0): 100.},
                            [-2, 0, 2])
    assert grid[0, 1] == 80. and grid[1, 2] == 90. and grid[1, 1] == 100.
    assert np.isnan(grid[2, 0])  # missing shifts are blank


def test_consistency_grid_still_importable_from_the_plot_module():
    from tips_mmseg.visualization.shift_heatmap import \
        consistency_grid as old_name
    assert old_name is consistency_grid
