"""Does tips_mmseg change mmengine or torch for code not ours?

Exercises, with mmengine and torch only, the behaviours a plugin could
change for every user of the process, and prints one line per behaviour:

    python tools/check_plugin_hygiene.py             # plain mmengine/torch
    python tools/check_plugin_hygiene.py --plugin    # after import tips_mmseg
    python tools/check_plugin_hygiene.py --enable    # and compat.enable()

Result lines start with ``| `` (mmengine's own log lines come in between).
The three outputs must be equal: ``import tips_mmseg`` changes nothing, and
the opt-in ``tips_mmseg.compat.enable()`` (what our tools call) acts only in
CPU launches and on mmseg segmentation datasets, never here. (Resuming
mmengine's own checkpoint under torch >= 2.6 fails in all three: a config
opts in to CheckpointSafetyHook for that.)
tests/test_utils/test_plugin_hygiene.py compares them.
"""
import argparse
import os
import os.path as osp
import pickle
import stat
import sys
import tempfile


def _mode(path):
    return oct(stat.S_IMODE(os.stat(path).st_mode))


def _error(fn):
    try:
        fn()
    except Exception as err:  # noqa: BLE001 - reporting the type is the point
        caught = [t.__name__ for t in (pickle.UnpicklingError, RuntimeError,
                                       TypeError, ValueError,
                                       ZeroDivisionError)
                  if isinstance(err, t)]
        return f'raises, caught as {caught}'
    return 'ok'


class _RunsCode:

    def __reduce__(self):
        return (os.getcwd, ())


def check_file_writes(tmp, out):
    from mmengine.fileio import get_file_backend
    backend = get_file_backend(tmp)
    new = osp.join(tmp, 'new', 'iter_1.pth')
    backend.put(b'weights', new)
    out(f'put new file: mode {_mode(new)}')
    backend.put_text('text', osp.join(tmp, 'new.txt'))
    out(f"put_text new file: mode {_mode(osp.join(tmp, 'new.txt'))}")
    shared = osp.join(tmp, 'shared.pth')
    with open(shared, 'wb') as f:
        f.write(b'old')
    os.chmod(shared, 0o664)
    backend.put(b'new', shared)
    out(f'put over a 0o664 file: mode {_mode(shared)}')
    target = osp.join(tmp, 'target.pth')
    with open(target, 'wb') as f:
        f.write(b'old')
    link = osp.join(tmp, 'link.pth')
    os.symlink(target, link)
    backend.put(b'through', link)
    with open(target, 'rb') as f:
        out(f'put to a symlink: link kept {osp.islink(link)}, target holds '
            f'{f.read()!r}')


def check_resume_pointer(tmp, out):
    import torch
    from mmengine.runner import runner as runner_module
    work_dir = osp.join(tmp, 'work')
    os.makedirs(work_dir)
    torch.save({'state_dict': {}}, osp.join(work_dir, 'iter_4.pth'))
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write('s3://bucket/run/iter_8.pth')
    found = runner_module.find_latest_checkpoint(work_dir)
    out(f'resume with a remote last_checkpoint: {found}')
    os.remove(osp.join(work_dir, 'last_checkpoint'))
    with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work_dir, 'iter_4.pth'))
    found = runner_module.find_latest_checkpoint(work_dir)
    out(f'resume with a local last_checkpoint: {osp.basename(found)}')


def check_checkpoint_hook(tmp, out):
    """A real mmengine Runner with its CheckpointHook writes through a
    symlinked pointer and gives files the umask's mode."""
    import torch
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Model(BaseModel):

        def __init__(self):
            super().__init__()
            self.linear = torch.nn.Linear(1, 1)

        def forward(self, inputs, labels=None, mode='tensor'):
            loss = (self.linear(inputs) ** 2).mean()
            return dict(loss=loss) if mode == 'loss' else [loss]

    work_dir = osp.join(tmp, 'hook_run')
    os.makedirs(work_dir)
    pointer_target = osp.join(tmp, 'pointer.txt')
    open(pointer_target, 'w').close()
    os.symlink(pointer_target, osp.join(work_dir, 'last_checkpoint'))
    data = [dict(inputs=torch.ones(1))] * 4
    runner = Runner(
        model=Model(), work_dir=work_dir,
        train_dataloader=dict(dataset=data, batch_size=2,
                              sampler=dict(type='DefaultSampler'),
                              collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=2),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook',
                                           interval=1, by_epoch=False)),
        log_level='ERROR')
    runner.train()
    ckpt = osp.join(work_dir, 'iter_2.pth')
    with open(pointer_target) as f:
        named = osp.basename(f.read())
    out(f'CheckpointHook: iter_2.pth mode {_mode(ckpt)}, pointer symlink '
        f'kept {osp.islink(osp.join(work_dir, "last_checkpoint"))}, '
        f'target names {named}')
    return ckpt


def check_loading(tmp, ckpt, out):
    import numpy as np
    import torch
    from mmengine.runner import CheckpointLoader
    from mmengine.runner.checkpoint import _load_checkpoint
    loader = CheckpointLoader._get_checkpoint_loader(ckpt)
    out(f'mmengine loader for a local path: {loader.__name__}')
    evil = osp.join(tmp, 'evil.pth')
    torch.save({'state_dict': {}, 'meta': _RunsCode()}, evil)
    out(f'code-running checkpoint via mmengine: '
        f'{_error(lambda: _load_checkpoint(evil))}')
    arrays = osp.join(tmp, 'arrays.pth')
    torch.save({'a': np.arange(3)}, arrays)
    out('torch.load(weights_only=True) of numpy arrays: '
        f'{_error(lambda: torch.load(arrays, weights_only=True))}')
    allowed = [str(g) for g in torch.serialization.get_safe_globals()]
    out(f'torch safe globals: {len(allowed)}, of numpy/mmengine: '
        f'{[g for g in allowed if "numpy" in g or "mmengine" in g]}')
    out('resume a mmengine checkpoint via mmengine: '
        f'{_error(lambda: _load_checkpoint(ckpt))}')


def check_dataloaders(out):
    """Datasets of any kind, given as configs as a Runner gets them."""
    import torch
    from mmengine.dataset import BaseDataset
    from mmengine.registry import DATASETS
    from mmengine.runner import Runner

    @DATASETS.register_module(name='HygieneStream', force=True)
    class Stream(torch.utils.data.IterableDataset):

        def __iter__(self):
            return iter(range(4))

    @DATASETS.register_module(name='HygieneEmpty', force=True)
    class Empty(BaseDataset):

        def load_data_list(self):
            return []

    def build(dataset, sampler):
        return Runner.build_dataloader(
            dict(dataset=dataset, sampler=sampler, batch_size=2,
                 collate_fn=dict(type='default_collate')))

    for name, dataset, sampler in [
        ('IterableDataset instance', Stream(), None),
        ('IterableDataset config', dict(type='HygieneStream'), None),
    ]:
        try:
            out(f'{name}: {[b.tolist() for b in build(dataset, sampler)]}')
        except Exception as err:  # noqa: BLE001
            out(f'{name}: {type(err).__name__}: {err}')
    for name, dataset in [('empty list dataset', []),
                          ('empty BaseDataset config',
                           dict(type='HygieneEmpty', serialize_data=False))]:
        try:
            loader = build(dataset, dict(type='DefaultSampler',
                                         shuffle=False))
            out(f'{name}: built with {len(loader.dataset)} samples; '
                f'iterating it {_error(lambda: list(loader))}')
        except Exception as err:  # noqa: BLE001
            out(f'{name}: {type(err).__name__}: {err}')


def check_distributed_launch(out):
    """With CUDA reported available at launch, mmengine's launcher sets the
    device and asks for the backend it was given."""
    import torch
    import torch.distributed as torch_dist
    from mmengine.dist import init_dist
    calls = []
    real = (torch.cuda.is_available, torch.cuda.set_device,
            torch_dist.init_process_group)
    torch.cuda.is_available = lambda: True
    torch.cuda.set_device = (
        lambda device: calls.append(f'set_device({device})'))
    torch_dist.init_process_group = (
        lambda backend=None, **kw: calls.append(
            f'init_process_group({backend})'))
    os.environ.update(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1')
    try:
        init_dist('pytorch', backend='nccl')
    finally:
        (torch.cuda.is_available, torch.cuda.set_device,
         torch_dist.init_process_group) = real
    out(f'launcher with CUDA available: {calls}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--plugin', action='store_true',
                        help='import tips_mmseg first')
    parser.add_argument('--enable', action='store_true',
                        help='import tips_mmseg and call '
                        'tips_mmseg.compat.enable() first')
    args = parser.parse_args()
    os.umask(0o022)
    if args.plugin or args.enable:
        import tips_mmseg  # noqa: F401
    if args.enable:
        import tips_mmseg.compat
        tips_mmseg.compat.enable()
    lines = []

    def out(line):
        lines.append(line)
        print('| ' + line, flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        check_file_writes(tmp, out)
        check_resume_pointer(tmp, out)
        ckpt = check_checkpoint_hook(tmp, out)
        check_loading(tmp, ckpt, out)
        check_dataloaders(out)
        check_distributed_launch(out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
