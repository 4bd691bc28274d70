"""Distributed training on a machine without CUDA (gloo on CPU).

mmengine 0.10.7 assumes GPUs once a launcher is given:

- ``_init_dist_pytorch`` / ``_init_dist_slurm`` / ``_init_dist_mpi`` call
  ``torch.cuda.set_device``, which fails on a CPU-only torch ("module
  'torch._C' has no attribute '_cuda_setDevice'"); and the default
  ``dist_cfg.backend='nccl'`` of mmseg's configs needs CUDA as well;
- ``Runner.wrap_model`` builds ``MMDistributedDataParallel`` with
  ``device_ids=[LOCAL_RANK]``, which torch refuses for a CPU module;
- SyncBN is reverted to BN only when *not* distributed, but torch's
  ``SyncBatchNorm`` cannot train on CPU tensors ("SyncBatchNorm expected
  input tensor to be on GPU"), and mmseg's base configs all use SyncBN.

:func:`install_cpu_distributed_support` wraps the three. It is opt-in and
process-wide: ``tips_mmseg.compat.enable()`` calls it, and our
``tools/train.py`` / ``tools/test.py`` (so ``tools/dist_train.sh``) call
that; ``import tips_mmseg`` does not. Each wrapper decides when it is called
- at launch, not when installed - whether the process runs on CPU: with CUDA
available (or a model on a GPU) mmengine's own code runs unchanged (real
SyncBN, NCCL, ``device_ids``).
"""
import functools
import logging
from contextlib import contextmanager

import torch
import torch.nn as nn
from mmengine.logging import print_log

_PATCHED = '_tips_mmseg_cpu_dist'


def has_sync_batchnorm(model: nn.Module) -> bool:
    """Whether ``model`` contains torch's ``SyncBatchNorm``."""
    return any(
        isinstance(m, nn.SyncBatchNorm) for m in model.modules())


@contextmanager
def _no_cuda_set_device():
    """Let mmengine's ``torch.cuda.set_device`` calls pass on CPU."""
    real = torch.cuda.set_device
    torch.cuda.set_device = lambda device: None
    try:
        yield
    finally:
        torch.cuda.set_device = real


def _cpu_init_dist(init_fn):
    """Wrap one of mmengine's ``_init_dist_<launcher>`` functions for CPU."""

    @functools.wraps(init_fn)
    def init(backend, *args, **kwargs):
        if torch.cuda.is_available():  # decided at launch
            return init_fn(backend, *args, **kwargs)
        if backend == 'nccl':
            # mmseg's default_runtime says nccl; on CPU gloo is the only
            # choice, so say so and use it rather than fail in torch.
            print_log(
                "dist_cfg.backend='nccl' needs CUDA, which is not available: "
                "using 'gloo' (set env_cfg.dist_cfg.backend=gloo to silence "
                'this).',
                logger='current',
                level=logging.WARNING)
            backend = 'gloo'
        with _no_cuda_set_device():
            return init_fn(backend, *args, **kwargs)

    setattr(init, _PATCHED, True)
    return init


def _cpu_ddp_init(ddp_init):
    """Drop ``device_ids``, which torch's DDP rejects for CPU modules."""

    @functools.wraps(ddp_init)
    def init(self, module, *args, **kwargs):
        on_cpu = all(p.device.type == 'cpu' for p in module.parameters())
        if on_cpu:
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        ddp_init(self, module, *args, **kwargs)

    setattr(init, _PATCHED, True)
    return init


def _cpu_wrap_model(wrap_model):
    """Revert SyncBN before mmengine wraps a model for CPU processes."""

    @functools.wraps(wrap_model)
    def wrap(self, model_wrapper_cfg, model):
        from mmengine.device import get_device
        from mmengine.model import is_model_wrapper, revert_sync_batchnorm
        if (not self.distributed or is_model_wrapper(model)
                or get_device() != 'cpu'):
            return wrap_model(self, model_wrapper_cfg, model)
        if has_sync_batchnorm(model):
            print_log(
                'SyncBatchNorm cannot train on CPU: reverted to BatchNorm, '
                'so each process normalizes with the statistics of its own '
                'batch and keeps its own running statistics; add '
                "custom_hooks=[dict(type='SyncBuffersHook')] to average them "
                'before validation (real SyncBN is kept on GPUs).',
                logger='current',
                level=logging.WARNING)
            model = revert_sync_batchnorm(model)
        sync_bn = self.cfg.get('sync_bn', None)
        if sync_bn is None:
            return wrap_model(self, model_wrapper_cfg, model)
        # cfg.sync_bn would convert BN back to SyncBN: skip it on CPU.
        print_log(
            f'cfg.sync_bn={sync_bn!r} is ignored on CPU (SyncBatchNorm '
            'needs GPUs).',
            logger='current',
            level=logging.WARNING)
        self.cfg.sync_bn = None
        try:
            return wrap_model(self, model_wrapper_cfg, model)
        finally:
            self.cfg.sync_bn = sync_bn

    setattr(wrap, _PATCHED, True)
    return wrap


def install_cpu_distributed_support() -> bool:
    """Let mmengine's launchers, DDP and SyncBN configs work on CPU.

    Idempotent. The wrappers act only in processes that launch without CUDA
    (checked when a launcher, DDP or ``wrap_model`` is called); elsewhere
    mmengine's code runs unchanged.

    Returns:
        bool: True (the wrappers are in place).
    """
    import mmengine.dist.utils as dist_utils
    from mmengine.model import MMDistributedDataParallel
    from mmengine.runner import Runner

    for name in ('_init_dist_pytorch', '_init_dist_slurm', '_init_dist_mpi'):
        fn = getattr(dist_utils, name)
        if not getattr(fn, _PATCHED, False):
            setattr(dist_utils, name, _cpu_init_dist(fn))
    if not getattr(MMDistributedDataParallel.__init__, _PATCHED, False):
        MMDistributedDataParallel.__init__ = _cpu_ddp_init(
            MMDistributedDataParallel.__init__)
    if not getattr(Runner.wrap_model, _PATCHED, False):
        Runner.wrap_model = _cpu_wrap_model(Runner.wrap_model)
    return True
