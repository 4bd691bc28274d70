"""Drawing the consistency map: mean consistency per shift (dh, dw)."""
from typing import Optional, Sequence

import numpy as np

# Arranging the numbers is analysis; kept importable from here as before.
from tips_mmseg.analysis.consistency_map import consistency_grid  # noqa: F401
from .figure import new_figure, save_figure


def plot_consistency_map(ax,
                         grid: Sequence[Sequence[float]],
                         axis: Sequence[int],
                         title: Optional[str] = None,
                         vmin: Optional[float] = None,
                         vmax: float = 100.0):
    """Draw the consistency map into a matplotlib ``ax``; returns the image
    (for a colour bar). Arguments as for :func:`draw_consistency_map`."""
    grid = np.asarray(grid, dtype=float)
    step = (axis[1] - axis[0]) if len(axis) > 1 else 1
    half = step / 2
    extent = (axis[0] - half, axis[-1] + half, axis[-1] + half,
              axis[0] - half)
    image = ax.imshow(
        grid, extent=extent, cmap='viridis', vmin=vmin, vmax=vmax,
        interpolation='nearest')
    ax.set_xlabel('dw (px)')
    ax.set_ylabel('dh (px)')
    ax.set_title(title or 'shift consistency (%)')
    return image


def draw_consistency_map(grid: Sequence[Sequence[float]],
                         axis: Sequence[int],
                         out_file: str,
                         title: Optional[str] = None,
                         vmin: Optional[float] = None,
                         vmax: float = 100.0) -> str:
    """Save the consistency map as a PNG heatmap with a colour bar.

    Args:
        grid (array-like): ``(len(axis), len(axis))`` consistency in percent,
            rows ``dh``, columns ``dw`` (as :func:`consistency_grid` gives).
        axis (Sequence[int]): The shift offsets of rows and columns.
        out_file (str): Path of the PNG; folders are created.
        title (str, optional): Figure title. Defaults to None.
        vmin (float, optional): Lower end of the colour scale; None uses the
            smallest value. Defaults to None.
        vmax (float): Upper end of the colour scale. Defaults to 100.

    Returns:
        str: ``out_file``.
    """
    fig, ax = new_figure(figsize=(5.5, 4.5))
    image = plot_consistency_map(ax, grid, axis, title, vmin, vmax)
    fig.colorbar(image, ax=ax, label='consistency (%)')
    return save_figure(fig, out_file, dpi=100)
