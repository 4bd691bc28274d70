"""Known cryptic errors of a training or test run, explained.

Used by ``tools/train.py`` and ``tools/test.py`` around mmseg's tools:
:func:`explain_errors` re-raises a few errors of torch and mmengine with what
went wrong and the fix (the original stays attached as ``__cause__``);
:func:`check_amp_available` refuses ``--amp`` where mmengine cannot run it.
"""
import difflib
import re
from contextlib import contextmanager

_BN_SINGLE_VALUE = 'Expected more than 1 value per channel when training'
_NOT_REGISTERED = re.compile(r'([\w.]+) is not in the (\w+)::(\w+) registry')


def batch_norm_error(err: ValueError) -> ValueError:
    """The error for BatchNorm training on one value per channel."""
    return ValueError(
        'BatchNorm cannot train on a batch of one sample where a layer sees '
        'one value per channel (e.g. the image-pooling branch of ASPP/PSP '
        f'heads): {err}. Use train_dataloader.batch_size >= 2 per process '
        '(with several processes each needs >= 2; SyncBN on GPUs shares the '
        'statistics across them), or drop a last batch of one with '
        'train_dataloader.drop_last=True (epoch-based loops).')


def registry_names(registry) -> list:
    """Names registered in ``registry`` and its parents."""
    names = []
    while registry is not None:
        names += list(registry.module_dict)
        registry = registry.parent
    return names


def unknown_type_error(err: KeyError, match: re.Match) -> KeyError:
    """The error for a config ``type`` no registry knows, with suggestions."""
    import mmseg.registry
    name, scope, kind = match.groups()
    registry = next((r for r in vars(mmseg.registry).values()
                     if getattr(r, 'name', None) == kind), None)
    close = (difflib.get_close_matches(name, registry_names(registry), n=3,
                                       cutoff=0.6) if registry else [])
    hint = f'did you mean {close}? ' if close else ''
    return KeyError(
        f'Unknown {kind} type {name!r} in the config: {hint}Check the '
        "spelling; types of a plugin need custom_imports=dict(imports=["
        "'tips_mmseg']) (or the plugin's package) in the config.")


@contextmanager
def explain_errors():
    """Re-raise known cryptic errors with their cause and fix."""
    try:
        yield
    except ValueError as err:
        if _BN_SINGLE_VALUE in str(err):
            raise batch_norm_error(err) from err
        raise
    except KeyError as err:
        match = _NOT_REGISTERED.search(str(err))
        if match:
            raise unknown_type_error(err, match) from err
        raise


def check_amp_available():
    """Raise ``RuntimeError`` if mmengine's AmpOptimWrapper cannot run here.

    mmengine's AmpOptimWrapper asserts a CUDA, NPU, MLU or MUSA device; on a
    CPU it would fail deep in the Runner. We refuse rather than silently train
    in float32, so that a result is never mistaken for a mixed-precision one.
    """
    from mmengine.device import get_device
    if get_device() == 'cpu':
        raise RuntimeError(
            '--amp (mixed precision) needs a GPU (CUDA, or NPU/MLU/MUSA), and '
            'none is available here: drop --amp to train in float32 on CPU.')
