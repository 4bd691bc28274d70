"""mIoU against corruption severity, from a robustness evaluation."""
from tips_mmseg.apis.robustness import MEAN_CORRUPTION_KEY
from .figure import new_figure, save_figure


def plot_corruption_curves(results: dict, path: str) -> str:
    """Draw mIoU against severity, one line per corruption, and save a PNG.

    Severity 0 is the clean mIoU; attacks are drawn as horizontal dashed
    lines for scale.

    Args:
        results (dict): As returned by
            :func:`~tips_mmseg.apis.evaluate_robustness`.
        path (str): Where to write the image (its folder is created).

    Returns:
        str: ``path``.
    """
    fig, ax = new_figure(figsize=(8.5, 4.5))
    clean = results['clean']['mIoU']
    for name, per_severity in results['corruptions'].items():
        severities = sorted(per_severity, key=int)
        xs = [0] + [int(s) for s in severities]
        ys = [clean] + [per_severity[s]['mIoU'] for s in severities]
        ax.plot(xs, ys, marker='o', label=name)
    for name, metrics in results['attacks'].items():
        ax.axhline(metrics['mIoU'], linestyle='--', color='grey', lw=1)
        ax.annotate(f'{name} eps={metrics["eps"]:g}', (0, metrics['mIoU']),
                    fontsize=8, color='grey', va='bottom')
    ax.set_xlabel('severity (0 = clean)')
    ax.set_ylabel('mIoU (%)')
    title = 'mIoU under corruptions'
    if results.get(MEAN_CORRUPTION_KEY) is not None:
        title += f' (mCorr-mIoU {results[MEAN_CORRUPTION_KEY]:.2f})'
    ax.set_title(title)
    ax.set_xticks(range(0, 6))
    ax.grid(alpha=0.3)
    if results['corruptions']:
        # Outside the axes: curves of nine corruptions leave no free corner.
        ax.legend(fontsize=8, loc='upper left', bbox_to_anchor=(1.02, 1))
    return save_figure(fig, path, dpi=120)
