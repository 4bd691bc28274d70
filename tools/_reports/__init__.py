"""The reports of tools/demo.py and tools/correlation_study.py.

Run bookkeeping, figures and written text that only these tools need; they
are not part of the installed ``tips_mmseg`` package. The numbers they show
come from :mod:`tips_mmseg.analysis` and the plots are drawn the one way
:mod:`tips_mmseg.visualization.figure` draws every figure. A tool puts its
own folder on ``sys.path`` and imports ``_reports.<module>``.
"""
