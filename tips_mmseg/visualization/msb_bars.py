"""Bar chart of the MSB of each downsampling layer of one model."""
from typing import Optional

import numpy as np

from tips_mmseg.analysis.msb import MSB_KEYS
from .figure import new_figure, save_figure

#: Legend labels of the three measurements.
MSB_LABELS = {
    'msb_pixel': 'pixel: output = window max',
    'msb_soft': 'soft: place in window range',
    'msb_phase': 'phase: weight of largest\ncomponent',
}


def plot_msb(result: dict, path: str, title: Optional[str] = None) -> str:
    """Draw the three MSBs of every layer as grouped bars and save a PNG.

    Values that do not apply (None) get an 'n/a' mark instead of a bar.
    Dashed lines mark the model's means.

    Args:
        result (dict): As returned by
            :func:`~tips_mmseg.analysis.analyze_msb`.
        path (str): Where to write the image (its folder is created).
        title (str, optional): Figure title. Defaults to None ('MSB per
            downsampling layer').

    Returns:
        str: ``path``.
    """
    layers = result['layers']
    positions = np.arange(len(layers))
    bar_width = 0.8 / len(MSB_KEYS)
    fig, ax = new_figure(
        figsize=(max(6.0, 0.45 * len(layers) + 2) + 2.5, 4.5))
    for index, key in enumerate(MSB_KEYS):
        kept = [(pos, layer[key]) for pos, layer in zip(positions, layers)
                if layer[key] is not None]
        offset = (index - (len(MSB_KEYS) - 1) / 2) * bar_width
        bars = ax.bar([pos + offset for pos, _ in kept],
                      [value for _, value in kept], bar_width,
                      label=MSB_LABELS[key])
        for pos, layer in zip(positions, layers):
            if layer[key] is None:  # tell "does not apply" from a zero bar
                ax.text(pos + offset, 0.01, 'n/a', rotation=90, ha='center',
                        va='bottom', fontsize=6, color='grey')
        mean = result['mean'].get(key)
        if mean is not None:
            ax.axhline(mean, linestyle='--', linewidth=0.8,
                       color=bars.patches[0].get_facecolor() if kept else None)
    ax.set_xticks(positions)
    ax.set_xticklabels([layer['name'] for layer in layers], rotation=60,
                       ha='right', fontsize=7)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel('MSB')
    ax.set_title(title or 'MSB per downsampling layer')
    # Outside the axes, so that no bar hides behind it; dashed: means.
    ax.legend(fontsize=7, loc='upper left', bbox_to_anchor=(1.01, 1),
              title='MSB (dashed: mean)', title_fontsize=7)
    return save_figure(fig, path, dpi=120)
