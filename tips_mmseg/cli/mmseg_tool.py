"""Run one of mmseg's own tools with tips_mmseg imported first.

Behind ``tools/train.py``, ``tools/test.py`` and, for an installed package,
``python -m tips_mmseg.cli.train`` / ``python -m tips_mmseg.cli.test``.

The CLI is mmseg's own, plus a few checks and switches:

* ``tips_mmseg.compat.enable()``: CPU distributed launch (gloo, DDP without
  ``device_ids``, SyncBN reverted on CPU) and clear errors for missing
  dataset paths or empty splits (docs/compatibility.md);
* ``CheckpointSafetyHook`` is added to ``default_hooks`` unless the config
  has it (safe loading on torch >= 2.6, resume fallback, atomic writes);
* CONFIG may also name one of tips-mmseg's configs (``toy/...py``), found in
  the checkout or the installed package; a missing one is a one-line error;
* ``--amp`` without a GPU is refused up front;
* before the Runner is built (after ``--cfg-options``): the model's class
  count is checked against the datasets', and :class:`CheckSegLabels` is
  added after ``LoadAnnotations`` in every pipeline, so a bad label file is
  refused by name when it is read;
* ``tools/test.py --shift-consistency [KEY=VALUE ...]`` adds
  ``ShiftConsistencyHook`` (with those arguments) to ``custom_hooks``;
* Ctrl-C during training says how to resume;
* a finished distributed run exits without finalizing the interpreter
  (:func:`exit_distributed_run` says why);
* known cryptic errors are re-raised with their cause and fix
  (tips_mmseg.utils.friendly_errors).

All of this acts in the tool's own process only (``import tips_mmseg``
changes nothing).
"""
import ast
import atexit
import os
import os.path as osp
import runpy
import shlex
import sys
import threading
from typing import List, Optional, Tuple


def mmseg_tool_path(name: str) -> str:
    """Path of mmseg's ``tools/<name>`` (wheel: mmseg/.mim/tools)."""
    import mmseg
    pkg = osp.dirname(mmseg.__file__)
    for candidate in (osp.join(pkg, '.mim', 'tools', name),
                      osp.join(osp.dirname(pkg), 'tools', name)):
        if osp.isfile(candidate):
            return candidate
    raise FileNotFoundError(
        f'mmseg\'s tools/{name} was not found next to {pkg}; install '
        'mmsegmentation from PyPI (its wheel ships mmseg/.mim/tools) or from '
        'a full source checkout.')


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def pop_switch(argv: List[str], switch: str) -> Tuple[List[str],
                                                        Optional[dict]]:
    """Remove ``switch`` and the ``KEY=VALUE`` words after it from ``argv``.

    Returns:
        tuple: The remaining argv and the options (None if the switch was
        not given).
    """
    if switch not in argv:
        return argv, None
    i = argv.index(switch)
    j = i + 1
    options = {}
    while j < len(argv) and not argv[j].startswith('-') and '=' in argv[j]:
        key, value = argv[j].split('=', 1)
        options[key] = _literal(value)
        j += 1
    return argv[:i] + argv[j:], options


def add_shift_hook(cfg, options: dict):
    """Add ``ShiftConsistencyHook`` with ``options`` to ``cfg.custom_hooks``
    (or update the one already there)."""
    hooks = list(cfg.get('custom_hooks') or [])
    for hook in hooks:
        if str(hook.get('type', '')).split('.')[-1] == 'ShiftConsistencyHook':
            hook.update(options)
            break
    else:
        hooks.append(dict(type='ShiftConsistencyHook', **options))
    cfg.custom_hooks = hooks


def _config_arg(argv: List[str]) -> Optional[str]:
    """CONFIG when it comes first, as mmseg's usage has it (after options
    it cannot be told from their values without mmseg's parser)."""
    if len(argv) > 1 and not argv[1].startswith('-'):
        return argv[1]
    return None


class _Session:
    """What the Runner was built with, for the Ctrl-C message."""
    work_dir = None


def _edit_runner_cfg(shift_options: Optional[dict]):
    """Check and edit the config when mmseg's tool builds its Runner."""
    from mmengine.runner import Runner
    from tips_mmseg.compat import add_checkpoint_safety_hook
    from tips_mmseg.datasets import add_label_checks, check_num_classes
    build = Runner.from_cfg.__func__

    def from_cfg(cls, cfg):
        check_num_classes(cfg)
        add_label_checks(cfg)
        add_checkpoint_safety_hook(cfg)
        if shift_options is not None:
            add_shift_hook(cfg, shift_options)
        _Session.work_dir = cfg.get('work_dir')
        return build(cls, cfg)

    Runner.from_cfg = classmethod(from_cfg)


def resume_hint(argv: List[str], work_dir: Optional[str]) -> str:
    """What to say when training is interrupted."""
    from tips_mmseg.utils.atomic_io import _numbered_checkpoints
    args = [a for a in argv[1:] if a != '--resume']
    command = ' '.join(['python', 'tools/train.py'] +
                       [shlex.quote(a) for a in args] + ['--resume'])
    newest = _numbered_checkpoints(work_dir)[:1] if work_dir else []
    where = (f'The newest checkpoint is {newest[0]}. ' if newest else
             f'No checkpoint was saved yet in {work_dir} '
             '(default_hooks.checkpoint.interval). ' if work_dir else '')
    return (f'Training interrupted (Ctrl-C). {where}Resume with:\n'
            f'    {command}')


def resolve_config(config: str) -> str:
    """A config file's path: ``config`` itself if it is a file, else one
    of tips-mmseg's own configs by name (``'toy/...py'``, as
    :func:`tips_mmseg.config_path` finds it in a checkout or in the
    installed package).

    Raises:
        FileNotFoundError: Neither, with both places named.
    """
    if osp.isfile(config):
        return config
    from tips_mmseg.configs import config_path
    try:
        return config_path(config)
    except (FileNotFoundError, ValueError) as err:
        raise FileNotFoundError(
            f'config file {config!r} does not exist (relative to '
            f'{os.getcwd()}), nor is it one of tips-mmseg\'s configs '
            f'({err}); check the path (our configs are in configs/, e.g. '
            'configs/toy/).') from None


def run(name: str):
    """Run mmseg's ``tools/<name>`` on ``sys.argv`` with the additions
    above (``python -m tips_mmseg.cli.train`` / ``.test``,
    ``tools/train.py``, ``tools/test.py``)."""
    argv = list(sys.argv)
    config = _config_arg(argv)
    if config is not None:
        try:
            argv[1] = resolve_config(config)
        except FileNotFoundError as err:
            sys.exit(f'error: {err}')
    shift_options = None
    if name == 'test.py':
        argv, shift_options = pop_switch(argv, '--shift-consistency')
    import tips_mmseg.compat
    tips_mmseg.compat.enable()
    from tips_mmseg.datasets import ConfigCheckError
    from tips_mmseg.utils import check_amp_available, explain_errors
    if '--amp' in argv[1:]:
        try:
            check_amp_available()
        except RuntimeError as err:
            sys.exit(f'error: {err}')
    _edit_runner_cfg(shift_options)
    path = mmseg_tool_path(name)
    sys.argv = [path] + argv[1:]
    try:
        with explain_errors():
            runpy.run_path(path, run_name='__main__')
    except ConfigCheckError as err:
        sys.exit(f'error: {err}')
    except BaseException as err:  # noqa: B902
        if name != 'train.py' or not _interrupted(err):
            raise
        print(resume_hint(argv, _Session.work_dir), file=sys.stderr)
        sys.exit(130)
    exit_distributed_run()


def exit_distributed_run():
    """End a finished distributed run: close the process group, do what a
    normal exit does before finalizing the interpreter, and leave without
    finalizing it. Returns (does nothing) if no process group is open.

    Why not a normal exit: gloo runs collectives on C++ worker threads,
    and a worker that frees a finished collective's tensors takes the GIL.
    If that happens while the interpreter finalizes, Python ends the
    thread inside a C++ destructor, and std::terminate aborts the rank
    ('terminate called without an active exception') after all its work
    is done: a non-zero exit under torchrun. Closing the group does not
    stop those threads, because ``torch.distributed.nn`` (imported by DDP)
    keeps the world group in default arguments until the process ends.

    Before leaving, the non-daemon threads are joined, the ``atexit``
    handlers run (logging's flush, multiprocessing's clean-up of worker
    processes, weakref finalizers) and the standard streams are flushed,
    as a normal exit would.
    """
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()):
        return
    # No rank tears down its connections while another is still in a
    # collective.
    dist.barrier()
    dist.destroy_process_group()
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(0)


def _interrupted(err: BaseException) -> bool:
    """Whether ``err`` is, or was raised while handling, a Ctrl-C.

    mmengine turns any exception inside ``Config.pretty_text`` (run at every
    checkpoint save) into a SyntaxError, so a Ctrl-C that lands there
    arrives as the context of that SyntaxError.
    """
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, KeyboardInterrupt):
            return True
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return False
