"""Distributed training and evaluation on CPU (gloo), SyncBN configs, DDP
safety of TIPS and LPS. The CPU launch fixes are opt-in
(tips_mmseg.compat.enable(), which our tools call)."""
import json
import os.path as osp
import socket

import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.config import Config
from mmengine.dist import all_reduce_params
from mmengine.model import MMDistributedDataParallel
from mmengine.optim import OptimWrapper
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS

from tests.dist_toys import write_syncbn_toy_config
from tests.helpers import enable_compat
from tests.test_models.test_regularized_segmentor import BN, batch
from tips_mmseg.models.regularization import tips_layers
from tips_mmseg.utils import has_sync_batchnorm
from tips_mmseg.utils.dist_compat import _cpu_init_dist


def test_launchers_skip_cuda_set_device_and_use_gloo_for_nccl():
    seen = {}

    def init(backend, **kwargs):  # stands for mmengine's _init_dist_pytorch
        torch.cuda.set_device(0)  # would fail on a CPU-only torch
        seen.update(backend=backend, **kwargs)

    _cpu_init_dist(init)('nccl', timeout=5)
    assert seen == dict(backend='gloo', timeout=5)
    _cpu_init_dist(init)('gloo')
    assert seen['backend'] == 'gloo'


def test_the_cpu_or_gpu_choice_is_made_at_launch(monkeypatch):
    """With CUDA available when the launcher runs (not at import), mmengine's
    own launcher runs unchanged: set_device, and the backend asked for."""
    import mmengine.dist.utils as dist_utils
    mmengine_launcher = dist_utils._init_dist_pytorch
    assert enable_compat(monkeypatch, dataset_checks=False) == [
        'cpu_distributed']
    assert dist_utils._init_dist_pytorch is not mmengine_launcher
    from tips_mmseg import compat
    compat.enable(dataset_checks=False)  # idempotent: wrapped once
    assert dist_utils._init_dist_pytorch.__wrapped__ is mmengine_launcher
    calls = []

    def init(backend, **kwargs):  # stands for mmengine's _init_dist_pytorch
        torch.cuda.set_device(0)
        calls.append(backend)

    wrapped = _cpu_init_dist(init)
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'set_device',
                        lambda device: calls.append(f'set_device({device})'))
    wrapped('nccl')
    assert calls == ['set_device(0)', 'nccl']
    # and the installed wrapper of mmengine's real launcher does the same
    monkeypatch.setattr(torch_dist, 'init_process_group',
                        lambda backend=None, **kw: calls.append(backend))
    monkeypatch.setenv('RANK', '0')
    monkeypatch.setenv('LOCAL_RANK', '0')
    calls.clear()
    dist_utils._init_dist_pytorch('nccl')
    assert calls == ['set_device(0)', 'nccl']


def test_wrap_model_keeps_syncbn_when_launched_on_gpu(monkeypatch):
    """The SyncBN revert is decided in wrap_model, from the device then."""
    from tips_mmseg.utils.dist_compat import _cpu_wrap_model
    seen = []

    class FakeRunner:
        distributed = True
        cfg = Config(dict())

    model = torch.nn.Sequential(torch.nn.SyncBatchNorm(2))
    wrap = _cpu_wrap_model(lambda self, cfg, m: seen.append(m) or m)
    import mmengine.device
    monkeypatch.setattr(mmengine.device, 'get_device', lambda: 'cuda')
    wrap(FakeRunner(), dict(), model)
    assert has_sync_batchnorm(seen[-1])
    monkeypatch.setattr(mmengine.device, 'get_device', lambda: 'cpu')
    wrap(FakeRunner(), dict(), model)
    assert not has_sync_batchnorm(seen[-1])


@pytest.fixture(scope='module')
def toy_config(tmp_path_factory):
    return write_syncbn_toy_config(tmp_path_factory.mktemp('dist'))


def test_syncbn_config_trains_in_one_process(toy_config, tmp_path):
    cfg = Config.fromfile(str(toy_config))
    cfg.work_dir = str(tmp_path)
    cfg.train_cfg.max_iters = 1
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint.interval = 1
    cfg.log_level = 'WARNING'
    runner = Runner.from_cfg(cfg)
    assert not has_sync_batchnorm(runner.model)  # mmengine's own revert
    runner.train()
    assert (tmp_path / 'iter_1.pth').is_file()


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def small_segmentor_cfg(down):
    """A narrow two-stage ResNet18 with ``down`` layers (fast on CPU)."""
    tips = down == 'TIPS'
    return dict(
        type='TIPSEncoderDecoder' if tips else 'EncoderDecoder',
        **(dict(tips_cfg=dict(eps=0.5)) if tips else {}),
        data_preprocessor=dict(type='SegDataPreProcessor', size=(32, 32)),
        backbone=dict(
            type='ShiftInvariantResNetV1c', depth=18, downsample_cfg=down,
            stem_channels=8, base_channels=8, num_stages=2, strides=(1, 2),
            dilations=(1, 1), out_indices=(1, ), norm_cfg=BN),
        decode_head=dict(
            type='FCNHead', in_channels=16, in_index=0, channels=8,
            num_convs=1, num_classes=3, dropout_ratio=0., norm_cfg=BN,
            loss_decode=dict(type='CrossEntropyLoss')))


def _ddp_worker(rank, world_size, port, out_dir):
    """Train TIPS and LPS segmentors under DDP, then record what they pick."""
    from tips_mmseg import compat
    compat.enable()  # DDP with device_ids on CPU, as the Runner passes them
    torch.set_num_threads(1)
    init_default_scope('mmseg')
    torch_dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=world_size)
    results = {}
    for down in ('TIPS', 'LPS'):
        torch.manual_seed(0)  # same initial weights on every rank
        model = MODELS.build(small_segmentor_cfg(down))
        # device_ids as mmengine's Runner passes them: the CPU fix drops them.
        ddp = MMDistributedDataParallel(
            model, device_ids=[rank], broadcast_buffers=False,
            find_unused_parameters=False)
        optim = OptimWrapper(torch.optim.SGD(ddp.parameters(), lr=0.1))
        torch.manual_seed(1 + rank)  # each rank its own data
        for step in range(3):
            if down == 'TIPS':  # L_undo off, then on
                model.set_train_progress(step, 4)
            inputs, samples = batch()
            ddp.train_step(dict(inputs=list(inputs), data_samples=samples),
                           optim)
        # Each rank's BN running statistics come from its own batches
        # (broadcast_buffers=False, as the Runner wraps): average them, as
        # mmengine's SyncBuffersHook does before validation.
        all_reduce_params(model.buffers(), op='mean')
        torch.manual_seed(123)  # the same input on every rank
        x = torch.randn(2, 3, 32, 32)
        picks = {}
        for mode in ('train', 'eval'):
            model.train(mode == 'train')
            with torch.no_grad():
                model.extract_feat(x)
            layers = [m for m in model.backbone.modules()
                      if type(m).__name__ == down]
            picks[mode] = [m.last_weights.tolist() for m in layers]
        if down == 'TIPS':
            assert len(tips_layers(model)) == len(layers)
        results[down] = dict(
            picks=picks,
            params=sum(p.double().sum().item() for p in model.parameters()))
    with open(osp.join(out_dir, f'rank{rank}.json'), 'w') as f:
        json.dump(results, f)
    torch_dist.destroy_process_group()


def test_tips_and_lps_are_ddp_safe(tmp_path):
    """No unused-parameter errors with find_unused_parameters=False; every
    rank keeps the same weights and picks the same tau for the same input."""
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2,
             join=True)
    ranks = [json.loads((tmp_path / f'rank{r}.json').read_text())
             for r in range(2)]
    for down in ('TIPS', 'LPS'):
        assert ranks[0][down]['params'] == ranks[1][down]['params']
        assert ranks[0][down]['picks']['eval'] == \
            ranks[1][down]['picks']['eval']
    # TIPS computes tau the same way in train and eval mode.
    assert ranks[0]['TIPS']['picks']['train'] == \
        ranks[1]['TIPS']['picks']['train']
