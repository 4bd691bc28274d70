"""The robustness figure: one line per corruption from the clean mIoU, one
dashed line per attack."""
import warnings

import numpy as np
import pytest

from tips_mmseg.apis.robustness import MEAN_CORRUPTION_KEY
import tips_mmseg.visualization.corruption_curves as curves

RESULTS = {
    'clean': {'mIoU': 80.0},
    'corruptions': {
        'gaussian_noise': {'1': {'mIoU': 70.0}, '3': {'mIoU': 50.0}},
        'defocus_blur': {'3': {'mIoU': 60.0}, '1': {'mIoU': 75.0}},
    },
    MEAN_CORRUPTION_KEY: 63.75,
    'attacks': {'fgsm': {'mIoU': 30.0, 'eps': 0.01}},
}


@pytest.fixture
def drawn(monkeypatch, tmp_path):
    """The figure plot_corruption_curves saves, and the saved file."""
    saved = {}
    save = curves.save_figure

    def keep(fig, path, **kwargs):
        saved['fig'] = fig
        return save(fig, path, **kwargs)

    monkeypatch.setattr(curves, 'save_figure', keep)
    path = curves.plot_corruption_curves(RESULTS, str(tmp_path / 'a' / 'r.png'))
    return saved['fig'], path


def test_lines_start_at_the_clean_miou_in_severity_order(drawn):
    fig, path = drawn
    with open(path, 'rb') as f:
        assert f.read(4) == b'\x89PNG'
    [ax] = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    noise = lines['gaussian_noise']
    assert list(noise.get_xdata()) == [0, 1, 3]
    assert list(noise.get_ydata()) == [80.0, 70.0, 50.0]
    blur = lines['defocus_blur']  # given out of order
    assert list(blur.get_xdata()) == [0, 1, 3]
    assert list(blur.get_ydata()) == [80.0, 75.0, 60.0]
    attack = [line for line in ax.get_lines()
              if line.get_linestyle() == '--']
    assert len(attack) == 1 and np.allclose(attack[0].get_ydata(), 30.0)
    assert 'mCorr-mIoU 63.75' in ax.get_title()


def test_the_old_apis_name_still_draws_and_warns(tmp_path):
    from tips_mmseg.apis import plot_corruption_curves
    path = tmp_path / 'old.png'
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter('always')
        plot_corruption_curves(RESULTS, str(path))
    assert path.read_bytes()[:4] == b'\x89PNG'
    assert any(issubclass(w.category, DeprecationWarning) and
               'tips_mmseg.visualization.plot_corruption_curves' in
               str(w.message) for w in caught)
