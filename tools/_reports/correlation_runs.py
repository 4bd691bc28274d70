"""Run bookkeeping of ``tools/correlation_study.py``: one JSON row per run.

A study is resumable: every finished run leaves
``WORK_DIR/runs/<variant>_seed<seed>.json`` (written atomically), and a
later call skips the runs whose row exists, is complete and was made with
the same settings.
"""
import json
import os.path as osp
from typing import Iterable, List, Optional, Sequence, Tuple

from tips_mmseg.analysis.correlation import ROW_METRIC_KEYS
from tips_mmseg.utils import atomic_write


def run_name(variant: str, seed: int) -> str:
    """Name of one run, e.g. ``tips_seed1``."""
    return f'{variant}_seed{seed}'


def run_result_path(work_dir: str, variant: str, seed: int) -> str:
    """Where the result row of one run is stored."""
    return osp.join(work_dir, 'runs', run_name(variant, seed) + '.json')


def save_run(path: str, row: dict) -> None:
    """Write one run's row atomically (a killed study leaves no half file).

    Args:
        path (str): Target, see :func:`run_result_path`.
        row (dict): The run's row, including its ``settings``.
    """
    atomic_write(json.dumps(row, indent=2), path)


def load_run(path: str, settings: Optional[dict] = None) -> Optional[dict]:
    """The stored row of a finished run, or None if it must be (re)run.

    A run is reused only if its file parses, has every metric, and was made
    with the same ``settings`` (iterations, shifts, ...): a study continued
    with other settings would otherwise mix incomparable runs.

    Args:
        path (str): The run's result file.
        settings (dict, optional): The settings the study runs with now;
            None accepts any.

    Returns:
        dict | None: The row, or None (missing, unreadable, incomplete or
        made with other settings).
    """
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            row = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict) or any(key not in row
                                        for key in ROW_METRIC_KEYS):
        return None
    if settings is not None and row.get('settings') != settings:
        return None
    return row


def plan_runs(work_dir: str, variants: Sequence[str], seeds: Sequence[int],
              settings: Optional[dict] = None
              ) -> Tuple[List[Tuple[str, int]], List[dict]]:
    """Split the study into runs still to do and rows already done.

    Args:
        work_dir (str): The study's work dir.
        variants (Sequence[str]): Variant names, e.g. ``('vanilla', 'tips')``.
        seeds (Sequence[int]): Training seeds.
        settings (dict, optional): See :func:`load_run`.

    Returns:
        tuple: ``(todo, done)``: ``[(variant, seed), ...]`` to run, all
        variants of the first seed first, and the reusable rows.
    """
    todo, done = [], []
    # Seed-major: a study stopped early still has every variant for the
    # seeds it finished, so its numbers compare like with like.
    for seed in seeds:
        for variant in variants:
            row = load_run(run_result_path(work_dir, variant, seed), settings)
            if row is None:
                todo.append((variant, seed))
            else:
                done.append(row)
    return todo, done


def order_rows(rows: Iterable[dict],
               variants: Optional[Sequence[str]] = None) -> List[dict]:
    """Rows sorted by variant (in ``variants`` order, else by name), seed."""
    rank = {name: i for i, name in enumerate(variants or ())}
    return sorted(rows, key=lambda r: (rank.get(r['variant'], len(rank)),
                                       r['variant'], r['seed']))
