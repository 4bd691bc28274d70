"""Command-line entry points for an installed tips-mmseg.

``python -m tips_mmseg.cli.train CONFIG [mmseg's arguments]`` and
``python -m tips_mmseg.cli.test CONFIG CHECKPOINT [...]`` are the checkout's
``tools/train.py`` and ``tools/test.py``; CONFIG may name one of our
configs (``toy/deeplabv3plus_r18-d8-tips_toy-64x64.py``). Nothing here is
imported by ``import tips_mmseg``.
"""
