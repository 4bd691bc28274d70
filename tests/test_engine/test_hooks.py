"""TIPSProgressHook and LPSTemperatureHook in a real mmengine Runner."""
import pytest
import torch
from mmengine.runner import Runner
from torch.utils.data import Dataset

import tips_mmseg  # noqa: F401
from tips_mmseg.engine.hooks import LPSTemperatureHook
from tips_mmseg.models import LPS

BN = dict(type='BN', requires_grad=True)


class _Tiny(Dataset):

    def __len__(self):
        return 4

    def __getitem__(self, i):
        from mmengine.structures import PixelData
        from mmseg.structures import SegDataSample
        g = torch.Generator().manual_seed(i)
        s = SegDataSample(gt_sem_seg=PixelData(
            data=torch.randint(0, 3, (1, 32, 32), generator=g)))
        s.set_metainfo(dict(img_shape=(32, 32), ori_shape=(32, 32)))
        return dict(inputs=torch.randint(0, 255, (3, 32, 32),
                                         dtype=torch.uint8, generator=g),
                    data_samples=s)


def _model(seg_type, down, **kwargs):
    cfg = dict(
        type=seg_type,
        data_preprocessor=dict(type='SegDataPreProcessor', mean=[0.] * 3,
                               std=[255.] * 3, size=(32, 32)),
        backbone=dict(type='ShiftInvariantResNetV1c', depth=18,
                      downsample_cfg=down, norm_cfg=BN,
                      strides=(1, 2, 1, 1), dilations=(1, 1, 2, 4)),
        decode_head=dict(type='FCNHead', in_channels=512, in_index=3,
                         channels=8, num_convs=1, num_classes=3,
                         norm_cfg=BN,
                         loss_decode=dict(type='CrossEntropyLoss')))
    cfg.update(kwargs)
    return cfg




def _run(tmp_path, model, hooks, iters=4):
    runner = Runner(
        model=model, work_dir=str(tmp_path),
        train_dataloader=dict(
            dataset=_Tiny(), batch_size=2,
            sampler=dict(type='DefaultSampler', shuffle=False),
            collate_fn=dict(type='default_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=1e-3)),
        train_cfg=dict(by_epoch=False, max_iters=iters),
        custom_hooks=hooks, default_hooks=dict(checkpoint=None),
        default_scope='mmseg')
    return runner


def test_progress_hook_drives_undo_switch(tmp_path):
    from mmengine.hooks import Hook
    seen = []

    class Spy(Hook):
        priority = 'LOW'  # after TIPSProgressHook (NORMAL)

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            m = runner.model
            seen.append((m._train_progress, m.undo_active()))

    runner = _run(tmp_path, _model('TIPSEncoderDecoder', 'TIPS',
                                   tips_cfg=dict(eps=0.5)),
                  [dict(type='TIPSProgressHook'), Spy()])
    runner.train()
    assert [s[0] for s in seen] == [(0, 4), (1, 4), (2, 4), (3, 4)]
    assert [s[1] for s in seen] == [False, False, True, True]


def test_progress_hook_rejects_plain_segmentor(tmp_path):
    runner = _run(tmp_path, _model('EncoderDecoder', 'TIPS'),
                  [dict(type='TIPSProgressHook')])
    with pytest.raises(TypeError, match='TIPSEncoderDecoder'):
        runner.train()


def test_lps_temperature_schedule(tmp_path):
    from mmengine.hooks import Hook
    temps = []

    class Spy(Hook):
        priority = 'LOW'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            layers = [m for m in runner.model.modules()
                      if isinstance(m, LPS)]
            assert len({m.temperature for m in layers}) == 1
            temps.append(layers[0].temperature)

    runner = _run(tmp_path, _model('EncoderDecoder', 'LPS'), [
        dict(type='LPSTemperatureHook', start=1.0, end=0.1), Spy()
    ])
    runner.train()
    expected = [0.1**(i / 4) for i in range(4)]
    assert temps == pytest.approx(expected)


def test_temperature_formula_and_errors():
    hook = LPSTemperatureHook(start=2.0, end=0.5, mode='linear')
    assert hook.temperature(0.5) == pytest.approx(1.25)
    assert LPSTemperatureHook(start=1., end=0.01).temperature(
        0.5) == pytest.approx(0.1)
    with pytest.raises(ValueError, match='> 0'):
        LPSTemperatureHook(start=0.)
    with pytest.raises(ValueError, match='mode'):
        LPSTemperatureHook(mode='cosine')


def release_multistep_linear(milestones, temperatures, epochs, init=1.0):
    """LPS's linear multi-step scheduler as a state machine, stepped at the
    end of every epoch: returns the temperature used in each epoch."""
    used, value = [], init
    t = offset = idx = 0
    for counter in range(0, epochs):
        used.append(value)  # epoch `counter` trains with the current value
        counter += 1  # then the scheduler steps
        if counter == 1:
            t, offset = value, 1
        if idx < len(milestones) and counter >= milestones[idx]:
            idx += 1
            t, offset = temperatures[idx - 1], milestones[idx - 1]
        if idx < len(milestones):
            s = (counter - offset) / (milestones[idx] - offset)
            value = (1 - s) * t + s * temperatures[idx]
        else:
            value = temperatures[idx - 1]
    return used


@pytest.mark.parametrize('preset, milestones, temperatures', [
    ('lps-seg', [0, 62, 82, 90], [1.0, 0.5, 0.05, 0.01]),
    ('lps-seg-warmup', [10, 60, 82, 90], [0.5, 0.15, 0.05, 0.01]),
    ('lps-seg-r101', [10, 80, 100, 125], [0.5, 0.3, 0.125, 0.01]),
])
def test_lps_presets_follow_the_release_scheduler(preset, milestones,
                                                  temperatures):
    hook = LPSTemperatureHook(preset=preset)
    expected = release_multistep_linear(milestones, temperatures, 140)
    got = [hook.knot_temperature(e) for e in range(140)]
    assert got == pytest.approx(expected, abs=1e-9)
    assert got[-1] == pytest.approx(0.01)


def test_lps_seg_preset_values():
    hook = LPSTemperatureHook(preset='lps-seg')
    assert hook.knot_temperature(0) == 1.0
    assert hook.knot_temperature(31) == pytest.approx(0.75)
    assert hook.knot_temperature(62) == pytest.approx(0.5)
    assert hook.knot_temperature(86) == pytest.approx(0.03)
    assert hook.knot_temperature(90) == hook.knot_temperature(500) == 0.01


def test_epoch_knots_in_an_iteration_based_run(tmp_path):
    from mmengine.hooks import Hook
    temps = []

    class Spy(Hook):
        priority = 'LOW'

        def before_train_iter(self, runner, batch_idx, data_batch=None):
            temps.append({m.temperature for m in runner.model.modules()
                          if isinstance(m, LPS)})

    # 4 samples, batch 2: 2 iterations per epoch (from the dataloader)
    runner = _run(tmp_path, _model('EncoderDecoder', 'LPS'), [
        dict(type='LPSTemperatureHook', knots=[(0, 1.0), (1, 0.5), (2, 0.1)]),
        Spy()
    ])
    runner.train()
    assert temps == [{1.0}, {1.0}, {0.5}, {0.5}]


def test_knot_errors():
    with pytest.raises(ValueError, match='Unknown LPSTemperatureHook preset'):
        LPSTemperatureHook(preset='lps-cls')
    with pytest.raises(ValueError, match='start at step 0'):
        LPSTemperatureHook(knots=[(1, 1.0), (2, 0.5)])
    with pytest.raises(ValueError, match='> 0'):
        LPSTemperatureHook(knots=[(0, 1.0), (2, 0.0)])
    with pytest.raises(ValueError, match='either preset or knots'):
        LPSTemperatureHook(preset='lps-seg', knots=[(0, 1.0)])


class _Samples(Dataset):

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return i


def _loader(sampler_type, world_size, monkeypatch, batch_size=2):
    """A dataloader as rank 0 of ``world_size`` processes builds it."""
    from mmengine.dataset import sampler as sampler_module
    from torch.utils.data import DataLoader
    monkeypatch.setattr(sampler_module, 'get_dist_info',
                        lambda: (0, world_size))
    sampler = getattr(sampler_module, sampler_type)(
        _Samples(), shuffle=False, seed=0)
    assert sampler.world_size == world_size
    return DataLoader(_Samples(), batch_size=batch_size, sampler=sampler)


@pytest.mark.parametrize('sampler_type', ['InfiniteSampler', 'DefaultSampler'])
@pytest.mark.parametrize('world_size', [1, 2])
def test_epoch_is_counted_per_process(sampler_type, world_size, monkeypatch):
    """8 samples, batch 2: one pass over the data is 4 iterations of one
    process, or 2 of each of two (InfiniteSampler's length is the whole
    dataset on every rank, DefaultSampler's one rank's share)."""
    from types import SimpleNamespace
    from tips_mmseg.engine.hooks.lps_temperature_hook import iters_per_epoch
    loader = _loader(sampler_type, world_size, monkeypatch)
    per_epoch = 4 // world_size
    assert iters_per_epoch(loader) == per_epoch
    if sampler_type == 'InfiniteSampler':
        assert len(loader) == 4  # what the hook used to take as an epoch
        # rank 0 really sees per_epoch batches of distinct samples per pass
        seen = [i for _, b in zip(range(per_epoch), loader) for i in b]
        assert sorted(seen) == list(range(0, 8, world_size))
    layer = LPS(3)
    runner = SimpleNamespace(model=torch.nn.Sequential(layer),
                             train_dataloader=loader, iter=0)
    hook = LPSTemperatureHook(knots=[(0, 1.0), (1, 0.5), (2, 0.1)])
    hook.before_train(runner)
    temps = []
    for it in range(6):
        runner.iter = it
        hook.before_train_iter(runner, it)
        temps.append(layer.temperature)
    want = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5] if per_epoch == 4 else \
        [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    assert temps == pytest.approx(want)


@pytest.mark.parametrize('kwargs, changed', [
    (dict(), False),
    (dict(knot_unit='epoch'), False),
    (dict(iters_per_epoch=4), False),  # the dataloader's own length
    (dict(knot_unit='iter'), True),
    (dict(iters_per_epoch=1), True),
])
def test_knot_options_reach_the_layers(kwargs, changed, monkeypatch):
    """Each option changes the LPS output (same weights, same Gumbel
    noise) exactly when its value differs from the default."""
    from types import SimpleNamespace
    loader = _loader('DefaultSampler', 1, monkeypatch)  # 4 iters per epoch
    x = torch.randn(2, 3, 8, 8)
    outputs = []
    for cfg in (dict(), kwargs):
        torch.manual_seed(0)
        layer = LPS(3, hidden_channels=4).train()
        runner = SimpleNamespace(model=torch.nn.Sequential(layer),
                                 train_dataloader=loader, iter=2)
        hook = LPSTemperatureHook(knots=[(0, 1.0), (2, 0.1)], **cfg)
        hook.before_train(runner)
        hook.before_train_iter(runner, 2)
        torch.manual_seed(1)
        outputs.append((layer.temperature, layer(x)))
    (t_default, y_default), (t, y) = outputs
    assert t_default == 1.0  # iteration 2 is still in epoch 0
    assert (t != t_default) is changed
    assert (not torch.equal(y, y_default)) is changed
