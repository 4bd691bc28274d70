"""Plots of tips-mmseg's measurements, drawn to files.

Not imported by ``import tips_mmseg``: a program that only trains or
evaluates never loads matplotlib. Every figure is made by
:func:`new_figure` (no pyplot, no backend switch).
"""
from .corruption_curves import plot_corruption_curves
from .figure import colour_cycle, new_figure, save_figure
from .msb_bars import plot_msb
from .shift_heatmap import (consistency_grid, draw_consistency_map,
                            plot_consistency_map)

__all__ = [
    'new_figure', 'save_figure', 'colour_cycle', 'plot_msb',
    'plot_corruption_curves',
    'consistency_grid', 'draw_consistency_map', 'plot_consistency_map'
]
