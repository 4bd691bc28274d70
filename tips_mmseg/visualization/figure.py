"""Figures for files: the one way every plot of tips-mmseg is drawn.

A figure is a :class:`matplotlib.figure.Figure` with its own Agg canvas, not
a pyplot figure: nothing here selects a backend (``matplotlib.use``), imports
``matplotlib.pyplot`` or registers figures in pyplot's global list, so
drawing a PNG works on a server without a display and leaves the backend of
a notebook or GUI program that imports tips-mmseg as it was. A figure is
freed like any other object once it is saved and dropped; there is nothing to
close.
"""
import os
import os.path as osp
from typing import List, Tuple

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def new_figure(nrows: int = 1,
               ncols: int = 1,
               figsize: Tuple[float, float] = (6.4, 4.8),
               squeeze: bool = True):
    """A figure and its axes, like ``pyplot.subplots`` but without pyplot.

    Args:
        nrows (int): Rows of axes. Defaults to 1.
        ncols (int): Columns of axes. Defaults to 1.
        figsize (tuple[float, float]): Width and height in inches. Defaults
            to (6.4, 4.8), matplotlib's default.
        squeeze (bool): As in ``Figure.subplots``: a single axis comes back
            alone, one row or column as a 1-d array; False always gives a
            2-d array. Defaults to True.

    Returns:
        tuple: ``(fig, axes)``.
    """
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)  # attaches itself: savefig renders with Agg
    return fig, fig.subplots(nrows, ncols, squeeze=squeeze)


def save_figure(fig: Figure,
                path: str,
                dpi: int = 100,
                tight: bool = True) -> str:
    """Save ``fig`` (format from the file name); folders are created.

    Args:
        fig (Figure): From :func:`new_figure`.
        path (str): Target file, e.g. ``out/plot.png``.
        dpi (int): Resolution. Defaults to 100.
        tight (bool): Run ``fig.tight_layout()`` first; False for layouts set
            by hand (e.g. a colour bar shared by several axes). Defaults to
            True.

    Returns:
        str: ``path``.
    """
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    return path


def colour_cycle() -> List[str]:
    """The colours of matplotlib's property cycle (``rcParams``), in
    order: what the n-th line or bar would get."""
    return matplotlib.rcParams['axes.prop_cycle'].by_key()['color']

