"""``import tips_mmseg`` registers modules and changes nothing else: in a
fresh interpreter, every attribute of mmengine, mmseg, mmcv and torch (and
the methods of their classes) is the same object before and after it."""
import json

from tests.helpers import REPO_ROOT, run_python

PROBE = r'''
import builtins, importlib, inspect, json, sys, types

NAMED = ['mmengine.runner', 'mmengine.runner.checkpoint',
         'mmengine.runner.runner',
         'mmengine.fileio', 'mmengine.fileio.backends', 'mmengine.model',
         'mmengine.dist', 'mmengine.dist.utils', 'mmengine.hooks',
         'mmengine.hooks.checkpoint_hook', 'mmseg.apis', 'mmseg.models',
         'mmseg.datasets', 'mmcv', 'mmcv.ops', 'torch', 'torch.serialization',
         'torch.cuda', 'torch.distributed']
for name in NAMED:
    importlib.import_module(name)
ROOTS = ('mmengine', 'mmseg', 'mmcv', 'torch')


def snapshot():
    ids, kinds = {}, {}
    for mod_name, module in list(sys.modules.items()):
        if not isinstance(module, types.ModuleType) or \
                mod_name.split('.')[0] not in ROOTS:
            continue
        for attr, value in list(vars(module).items()):
            ids[f'{mod_name}:{attr}'] = id(value)
            kinds[f'{mod_name}:{attr}'] = isinstance(value, types.ModuleType)
            # classes defined there: their methods and class attributes
            if inspect.isclass(value) and getattr(
                    value, '__module__', None) == mod_name:
                for key, member in list(vars(value).items()):
                    ids[f'{mod_name}:{attr}.{key}'] = id(member)
                    kinds[f'{mod_name}:{attr}.{key}'] = False
    return ids, kinds


def state():
    """Process state a plugin could change without touching attributes."""
    from mmengine.fileio.backends.registry_utils import (backends,
                                                         prefix_to_backends)
    from mmengine.runner.checkpoint import CheckpointLoader
    import torch
    return {
        'meta_path': [repr(f) for f in sys.meta_path],
        'path_hooks': [repr(h) for h in sys.path_hooks],
        'open': id(builtins.open),
        'checkpoint schemes': {k: id(v) for k, v in
                               CheckpointLoader._schemes.items()},
        'file backends': {k: id(v) for k, v in backends.items()},
        'file prefixes': {k: id(v) for k, v in prefix_to_backends.items()},
        'torch safe globals': [str(g) for g in
                               torch.serialization.get_safe_globals()],
        'mmcv._ext': id(sys.modules.get('mmcv._ext')),
    }


(before, _), state_before = snapshot(), state()
modules_before = set(sys.modules)
import tips_mmseg  # noqa: E402
(after, kinds), state_after = snapshot(), state()
changed = sorted(k for k, v in before.items() if after.get(k, v) != v)
gone = sorted(k for k in before if k not in after)
# New attributes of modules that existed before, other than submodules
# imported meanwhile (a package gets those as attributes).
added = sorted(k for k in after if k not in before and not kinds[k]
               and k.split(':')[0] in modules_before)
shim = [m for m in set(sys.modules) - modules_before if 'shim' in m
        or 'bootstrap' in m]
print(json.dumps(dict(
    checked=len(before), changed=changed, gone=gone, added=added, shim=shim,
    state_before=state_before, state_after=state_after,
    names=sorted(before))))
'''


def probe():
    result = run_python(['-c', PROBE], cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.splitlines()[-1])


def test_import_tips_mmseg_replaces_no_attribute_and_no_state():
    found = probe()
    assert found['changed'] == [] and found['gone'] == []
    assert found['added'] == []
    assert found['state_after'] == found['state_before']
    assert found['shim'] == []  # tips_mmseg does not import a start-up shim
    # The snapshot covers what the plugin used to replace.
    names = set(found['names'])
    assert {
        'mmengine.runner.checkpoint:CheckpointLoader.load_checkpoint',
        'mmengine.runner.runner:find_latest_checkpoint',
        'mmengine.runner.runner:Runner.wrap_model',
        'mmengine.runner.runner:Runner.build_dataloader',
        'mmengine.runner.runner:Runner.from_cfg',
        'mmengine.fileio.backends.local_backend:LocalBackend.put',
        'mmengine.fileio.backends.local_backend:LocalBackend.put_text',
        'mmengine.dist.utils:_init_dist_pytorch',
        'mmengine.dist.utils:_init_dist_slurm',
        'mmengine.dist.utils:_init_dist_mpi',
        'mmengine.model.wrappers.distributed:'
        'MMDistributedDataParallel.__init__',
        'mmseg.apis.inference:init_model',
        'torch:load', 'torch.serialization:load',
        'torch.cuda:set_device',
    } <= names
    # (the old patch also *added* an ``open`` to
    # mmengine.hooks.checkpoint_hook: ``added`` would list it)
    assert found['checked'] > 50000
