"""One plotting strategy: no pyplot, no backend switch, nothing at import.

Each check runs in a fresh interpreter: what an import loads and which
backend matplotlib ends up with depend on the whole process.
"""
import json
import os.path as osp
import textwrap

from tests.helpers import REPO_ROOT, run_python


def _run(code: str, tmp_path, env=None) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON line last."""
    result = run_python(['-c', textwrap.dedent(code)], cwd=str(tmp_path),
                        env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_import_tips_mmseg_loads_no_plotting(tmp_path):
    # A user's choice of backend (here through the environment) must hold.
    state = _run('''
        import json, sys
        import tips_mmseg
        loaded = sorted(m for m in sys.modules
                        if m.startswith(('tips_mmseg.visualization',
                                         '_reports', 'matplotlib')))
        import matplotlib
        print(json.dumps(dict(loaded=loaded,
                              pyplot='matplotlib.pyplot' in sys.modules,
                              backend=matplotlib.get_backend())))
    ''', tmp_path, env=dict(MPLBACKEND='pdf'))
    assert state['loaded'] == []
    assert state['pyplot'] is False
    assert state['backend'] == 'pdf'


def test_drawing_keeps_the_users_backend_and_skips_pyplot(tmp_path):
    """Every figure function of the package and of the tools' reports draws
    a PNG while a program has chosen another backend, and leaves it."""
    state = _run(f'''
        import json, sys
        import matplotlib
        matplotlib.use('pdf')  # the program's own choice
        import numpy as np
        sys.path.append({osp.join(REPO_ROOT, 'tools')!r})
        from tips_mmseg.visualization import draw_consistency_map, plot_msb
        from _reports.correlation_figure import plot_correlation
        from _reports.demo_figures import (draw_consistency_maps,
                                           draw_loss_curves,
                                           draw_metric_bars)

        layer = dict(name='stem', type='MaxPool2d', msb_pixel=0.4,
                     msb_soft=0.6, msb_phase=None)
        msb = dict(layers=[layer], mean=dict(msb_pixel=0.4, msb_soft=0.6,
                                             msb_phase=None))
        heatmap = dict(axis=[-1, 0, 1],
                       grid=[[90., 95., 90.], [95., 100., 95.],
                             [90., 95., 90.]])
        runs = [dict(variant=v, seed=0, metrics=dict(mIoU=50. + i,
                                                      mASSC=90. + i),
                     heatmap=heatmap, losses=[2., 1.5, 1.],
                     loss_terms=dict(task=[2., 1.5, 1.]))
                for i, v in enumerate(('vanilla', 'tips'))]
        rows = [dict(variant=v, seed=s, msb_soft=0.7 - 0.1 * i + 0.01 * s,
                     mASSC=90. + i + s, mASSC_circular=91. + i)
                for i, v in enumerate(('vanilla', 'aps', 'tips'))
                for s in (0, 1)]
        files = [
            plot_msb(msb, 'msb.png'),
            draw_consistency_map(heatmap['grid'], heatmap['axis'],
                                 'map.png'),
            plot_correlation(rows, 'scatter.png'),
            draw_metric_bars(runs, 'metrics.png'),
            draw_consistency_maps(runs, 'maps.png'),
            draw_loss_curves(runs, 'losses.png'),
        ]
        heads = [open(f, 'rb').read(8).hex() for f in files]
        print(json.dumps(dict(heads=heads,
                              pyplot='matplotlib.pyplot' in sys.modules,
                              backend=matplotlib.get_backend())))
    ''', tmp_path)
    assert state['heads'] == ['89504e470d0a1a0a'] * 6  # all PNG
    assert state['pyplot'] is False
    assert state['backend'] == 'pdf'


def test_no_module_selects_a_backend():
    """The rule behind the tests above, for code they do not draw with."""
    import glob
    sources = (glob.glob(osp.join(REPO_ROOT, 'tips_mmseg', '**', '*.py'),
                         recursive=True) +
               glob.glob(osp.join(REPO_ROOT, 'tools', '**', '*.py'),
                         recursive=True))
    offenders = [
        osp.relpath(path, REPO_ROOT) for path in sources
        if any(token in open(path).read()
               for token in ('matplotlib.use(', 'import matplotlib.pyplot',
                             'from matplotlib import pyplot'))
    ]
    assert sources and offenders == []
