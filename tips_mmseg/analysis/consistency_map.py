"""Numbers of a consistency map: mean consistency per shift ``(dh, dw)``.

A map is ``dict(axis=[...], grid=[[...], ...])`` as
:func:`tips_mmseg.apis.evaluate_shift_consistency` returns it under
``'heatmap'``: rows ``dh``, columns ``dw``, consistency in percent.
"""
from typing import Dict, Sequence

import numpy as np

from tips_mmseg.utils.shift_ops import Shift


def consistency_grid(by_shift: Dict[Shift, float],
                     axis: Sequence[int]) -> np.ndarray:
    """Arrange ``{(dh, dw): value}`` on a grid: rows ``dh``, columns ``dw``.

    Shifts missing from ``by_shift`` are NaN (drawn blank).
    """
    grid = np.full((len(axis), len(axis)), np.nan)
    for row, dh in enumerate(axis):
        for col, dw in enumerate(axis):
            grid[row, col] = by_shift.get((dh, dw), np.nan)
    return grid


def off_centre_grid(heatmap: dict) -> np.ndarray:
    """The map's grid as floats with the unshifted cell (0, 0) set to NaN
    (it is 100 by definition and says nothing)."""
    grid = np.array(heatmap['grid'], dtype=float)
    axis = list(heatmap['axis'])
    if 0 in axis:
        centre = axis.index(0)
        grid[centre, centre] = np.nan
    return grid


def map_mean(heatmap: dict) -> float:
    """Mean of a consistency map over every shift except (0, 0)."""
    return float(np.nanmean(off_centre_grid(heatmap)))


def odd_even_gap(heatmap: dict) -> float:
    """Mean consistency at even minus at odd shifts (``dh + dw`` even or
    odd, (0, 0) excluded): positive where odd shifts hurt more, the mark of
    aliasing in stride-2 sampling."""
    grid = np.asarray(heatmap['grid'], dtype=float)
    axis = np.asarray(heatmap['axis'])
    parity = (axis[:, None] + axis[None, :]) % 2
    centre = (axis[:, None] == 0) & (axis[None, :] == 0)
    even = grid[(parity == 0) & ~centre]
    odd = grid[parity == 1]
    return float(np.nanmean(even) - np.nanmean(odd))
