"""ShiftTTAModel + ShiftConsistencyMetric: the numbers of the former hook,
checkpoints both ways, training untouched, and mmseg's own tools."""
import copy
import json
import os.path as osp

import pytest
import torch
from mmengine.runner import Runner, load_checkpoint

from tests.helpers import MMSEG_TOOLS, REPO_ROOT, run_python
from tests.shift_toys import (build_model, dataset_cfg, head,
                              pixelwise_model_cfg, pointwise_model_cfg,
                              runner_cfg, strided_model_cfg, write_dataset)
from tips_mmseg.evaluation import ALL_SHIFT_METRIC_KEYS
from tips_mmseg.models import ShiftTTAModel
from tips_mmseg.utils import safe_checkpoint_path

ALL = ('standard', 'circular', 'crop', 'subpixel')
SLIDE = dict(mode='slide', crop_size=(16, 16), stride=(12, 12))
MIXED = [(32, 32), (28, 36), (32, 24), (36, 36), (30, 30)]

# Measured with ShiftConsistencyHook as it was before it became this
# wrapper + metric (it captured the loop's forward by replacing
# model.inference): the same settings must give the same numbers. Drawn
# shifts pack sample_idx, which seeded the draws then as now.
FORMER_HOOK = {
    'explicit_all': (strided_model_cfg, None, 'data', 2, False,
                     dict(shifts=[(3, -5), (1, 2), (-2, 0)],
                          modes=ALL,
                          subpixel_shifts=[(0.5, -0.25), (0.3, 0.7)]),
                     dict(mASSC=78.04798970735659,
                          mASSC_circular=76.92057291666666,
                          mASSC_worst=70.14707699913482,
                          mASSC_boundary=78.57857645087853,
                          shift_fidelity=6.702635129567831,
                          shift_mIoU=6.156504810792473,
                          mASSC_crop=64.59068030734697,
                          mASSC_subpixel=83.38010204081634,
                          mASSC_std=5.378584397951209)),
    'drawn_all': (strided_model_cfg, None, 'data', 2, True,
                  dict(num_shifts=3,
                       max_shift=6,
                       seed=3,
                       modes=ALL,
                       shift_batch_size=4),
                  dict(mASSC=77.64969635019534,
                       mASSC_circular=72.94921875,
                       mASSC_worst=65.63267975775132,
                       mASSC_boundary=77.77618993731029,
                       shift_fidelity=6.516913935487348,
                       shift_mIoU=7.010490174754396,
                       mASSC_crop=67.12345690525356,
                       mASSC_subpixel=83.3843537414966)),
    'slide': (strided_model_cfg, SLIDE, 'data', 2, False,
              dict(shifts=[(3, -5), (2, 2)]),
              dict(mASSC=62.87228607918263,
                   mASSC_circular=60.72265624999999,
                   mASSC_worst=57.77190293742018,
                   mASSC_boundary=63.098846920033644,
                   shift_fidelity=7.8508301404853125,
                   shift_mIoU=8.440432806766024,
                   mASSC_std=3.1277139208173708)),
    'mixed_sizes_padded': (strided_model_cfg, None, 'mixed', 1, False,
                           dict(shifts=[(3, -5), (1, 1)],
                                modes=('standard', 'circular', 'crop')),
                           dict(mASSC=73.56392508415144,
                                mASSC_circular=70.09183476631394,
                                mASSC_worst=69.59082926974578,
                                mASSC_boundary=74.28737835258457,
                                shift_fidelity=5.0611911103774485,
                                shift_mIoU=5.302171152351431,
                                mASSC_crop=64.71213556742403,
                                mASSC_std=2.5440216627508674)),
    'pixelwise_subpixel':
    (pixelwise_model_cfg, None, 'data', 2, True, dict(modes=('subpixel', )),
     dict(mASSC_subpixel=98.99489795918367)),
}


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('tta')
    write_dataset(root / 'data')
    write_dataset(root / 'mixed', size=MIXED)
    return root


@pytest.mark.parametrize('case', list(FORMER_HOOK))
def test_metric_gives_the_numbers_of_the_former_hook(dataset, case):
    cfg_fn, test_cfg, data, batch, pack, options, expected = \
        FORMER_HOOK[case]
    model = build_model(cfg_fn(test_cfg))
    if data == 'mixed':  # batches of one, padded to a multiple of 8
        model.data_preprocessor.test_cfg = dict(size_divisor=8)
    metrics = Runner(**runner_cfg(dataset / data,
                                  dataset / case,
                                  model,
                                  batch,
                                  options,
                                  via='metric',
                                  pack_index=pack,
                                  experiment_name=case)).test()
    assert {
        k: metrics[k]
        for k in expected
    } == pytest.approx(expected, rel=1e-12, abs=1e-12)
    assert set(metrics) - {'aAcc', 'mIoU', 'mAcc'} == set(expected)


def test_hook_and_explicit_config_agree(dataset):
    """Hook alone, wrapper + metric alone, and both (the hook then uses
    the config's wrapper and metric): the same numbers."""
    options = dict(num_shifts=2, max_shift=5, modes=ALL)
    runs = {}
    for via in ('hook', 'metric', 'both'):
        model = build_model(strided_model_cfg())
        cfg = runner_cfg(dataset / 'data', dataset / f'agree_{via}', model,
                         2, options, via=via.replace('both', 'metric'),
                         experiment_name=f'agree_{via}')
        if via == 'both':
            cfg['custom_hooks'] = [dict(type='ShiftConsistencyHook')]
        runner = Runner(**cfg)
        runs[via] = runner.test()
    assert runs['hook'] == runs['metric'] == runs['both']
    assert set(ALL_SHIFT_METRIC_KEYS) <= set(runs['hook'])
    assert [type(m).__name__ for m in runner.test_loop.evaluator.metrics
            ] == ['IoUMetric', 'ShiftConsistencyMetric']


def test_hook_removes_wrapper_and_metric_after_the_loop(dataset):
    model = build_model(pointwise_model_cfg())
    runner = Runner(**runner_cfg(dataset / 'data', dataset /
                                 'removed', model, 2, dict(max_shift=4)))
    runner.test()
    assert runner.model is model
    assert [type(m).__name__
            for m in runner.test_loop.evaluator.metrics] == ['IoUMetric']
    hook = next(h for h in runner.hooks
                if type(h).__name__ == 'ShiftConsistencyHook')
    assert hook.wrapper.module is model
    assert hook.wrapper.predictor.forward_time > 0


def test_metric_without_the_wrapper_says_what_to_add(dataset):
    cfg = runner_cfg(dataset / 'data',
                     dataset / 'nowrap',
                     build_model(pointwise_model_cfg()),
                     2,
                     via='metric')
    cfg['model'] = cfg['model'].module
    with pytest.raises(KeyError,
                       match="model = dict\\(type='ShiftTTAModel'"
                       ", module=<segmentor>\\)"):
        Runner(**cfg).test()


def test_state_dict_has_the_segmentor_keys_both_ways(tmp_path):
    plain = build_model(strided_model_cfg())
    wrapped = ShiftTTAModel(copy.deepcopy(plain), max_shift=4)
    assert list(wrapped.state_dict()) == list(plain.state_dict())
    # segmentor attributes read through the wrapper (hooks do), copies
    # (EMA does) keep the keys
    assert wrapped.num_classes == plain.num_classes
    assert wrapped.decode_head is wrapped.module.decode_head
    assert list(copy.deepcopy(wrapped).state_dict()) == list(
        plain.state_dict())
    with pytest.raises(AttributeError):
        wrapped.no_such_attribute
    # a plain checkpoint loads into the wrapper, through mmengine's loader
    # and through torch's own load_state_dict
    fresh = build_model(strided_model_cfg())
    with torch.no_grad():
        for p in plain.parameters():
            p.add_(1.0)
    torch.save(dict(state_dict=plain.state_dict()), tmp_path / 'plain.pth')
    target = ShiftTTAModel(copy.deepcopy(fresh))
    load_checkpoint(target, str(tmp_path / 'plain.pth'), strict=True)
    other = ShiftTTAModel(copy.deepcopy(fresh))
    other.load_state_dict(plain.state_dict(), strict=True)
    for model in (target, other):
        for key, value in plain.state_dict().items():
            assert torch.equal(model.module.state_dict()[key], value), key
    # and the wrapper's state dict loads into a plain segmentor
    back = build_model(strided_model_cfg())
    back.load_state_dict(target.state_dict(), strict=True)
    assert torch.equal(back.backbone.stem[0].weight,
                       plain.backbone.stem[0].weight)


def _train_cfg(root, work_dir, model, val=False):
    loader = runner_cfg(root, work_dir, model)['test_dataloader']
    cfg = dict(
        model=model,
        work_dir=str(work_dir),
        train_dataloader=dict(loader,
                              sampler=dict(type='InfiniteSampler',
                                           shuffle=False)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1, momentum=0.9)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=3, val_interval=3),
        default_hooks=dict(checkpoint=dict(
            type='CheckpointHook', by_epoch=False, interval=3)),
        default_scope='mmseg',
        randomness=dict(seed=0),
        log_level='WARNING')
    if val:
        cfg.update(val_dataloader=loader,
                   val_cfg=dict(type='ValLoop'),
                   val_evaluator=[
                       dict(type='IoUMetric', iou_metrics=['mIoU']),
                       dict(type='ShiftConsistencyMetric')
                   ])
        cfg['default_hooks']['checkpoint'].update(save_best='mASSC',
                                                  rule='greater')
    return cfg


def test_training_through_the_wrapper_is_the_segmentors(dataset):
    """Same steps, same weights; its checkpoint loads into the plain
    segmentor; val reports mASSC and save_best keeps the best on it."""
    plain = build_model(strided_model_cfg())
    plain.data_preprocessor.size = (32, 32)  # training stacks a batch
    wrapped = ShiftTTAModel(copy.deepcopy(plain), max_shift=4, num_shifts=2)
    Runner(**_train_cfg(dataset / 'data', dataset /
                        'train_plain', plain)).train()
    runner = Runner(**_train_cfg(
        dataset / 'data', dataset / 'train_wrapped', wrapped, val=True))
    runner.train()
    trained = wrapped.module.state_dict()
    for key, value in plain.state_dict().items():
        assert torch.equal(trained[key], value), key
    initial = build_model(strided_model_cfg()).state_dict()
    assert not torch.equal(trained['backbone.stem.0.weight'],
                           initial['backbone.stem.0.weight'])  # it trained
    ckpt = dataset / 'train_wrapped' / 'iter_3.pth'
    reloaded = build_model(strided_model_cfg())
    load_checkpoint(reloaded, safe_checkpoint_path(str(ckpt)), strict=True)
    for key, value in plain.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key
    best = list((dataset / 'train_wrapped').glob('best_mASSC_iter_3.pth'))
    assert len(best) == 1
    assert runner.message_hub.get_scalar('val/mASSC').current() > 0


def _tool_config(tmp_path):
    """A config file with real mmseg parts only: wrapper + both metrics."""
    write_dataset(tmp_path / 'data', num_images=3)
    segmentor = dict(type='EncoderDecoder',
                     data_preprocessor=dict(type='SegDataPreProcessor',
                                            mean=[123.675, 116.28, 103.53],
                                            std=[58.395, 57.12, 57.375],
                                            bgr_to_rgb=True,
                                            size=(32, 32)),
                     backbone=dict(type='ResNetV1c',
                                   depth=18,
                                   stem_channels=8,
                                   base_channels=8,
                                   out_indices=(1, ),
                                   norm_cfg=dict(type='BN',
                                                 requires_grad=True)),
                     decode_head=head(16),
                     test_cfg=dict(mode='whole'))
    loader = dict(batch_size=2,
                  num_workers=0,
                  sampler=dict(type='DefaultSampler', shuffle=False),
                  dataset=dataset_cfg(tmp_path / 'data'))
    config = tmp_path / 'shift_toy.py'
    config.write_text(
        "_base_ = ['mmseg::_base_/default_runtime.py']\n"
        "custom_imports = dict(imports=['tips_mmseg'], "
        'allow_failed_imports=False)\n'
        f'segmentor = {segmentor!r}\n'
        "model = dict(type='ShiftTTAModel', module=segmentor, "
        'num_shifts=2, max_shift=4)\n'
        f'train_dataloader = dict({loader!r}, '
        "sampler=dict(type='InfiniteSampler', shuffle=True))\n"
        f'val_dataloader = {loader!r}\n'
        'test_dataloader = val_dataloader\n'
        "val_evaluator = [dict(type='IoUMetric', iou_metrics=['mIoU']), "
        "dict(type='ShiftConsistencyMetric')]\n"
        'test_evaluator = val_evaluator\n'
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.01))\n"
        "train_cfg = dict(type='IterBasedTrainLoop', max_iters=2, "
        'val_interval=2)\n'
        "val_cfg = dict(type='ValLoop')\n"
        "test_cfg = dict(type='TestLoop')\n"
        "default_hooks = dict(checkpoint=dict(type='CheckpointHook', "
        "by_epoch=False, interval=2, save_best='mASSC', rule='greater'), "
        "logger=dict(type='LoggerHook', interval=1), "
        "checkpoint_safety=dict(type='CheckpointSafetyHook'))\n")
    return config


@pytest.fixture(scope='module')
def tool_run(tmp_path_factory):
    """One training run with mmseg's own tools/train.py: its checkpoint
    feeds the test tools."""
    tmp_path = tmp_path_factory.mktemp('tools')
    config = _tool_config(tmp_path)
    work = tmp_path / 'work'
    result = run_python([
        osp.join(MMSEG_TOOLS, 'train.py'),
        str(config), '--work-dir',
        str(work)
    ],
                        cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return config, work, result.stdout + result.stderr


def test_mmseg_train_py_validates_and_saves_best_on_mASSC(tool_run):
    config, work, output = tool_run
    assert 'mASSC:' in output and 'mIoU:' in output
    assert len(list(work.glob('best_mASSC_iter_2.pth'))) == 1
    # the checkpoint has the plain segmentor's keys
    state = torch.load(work / 'iter_2.pth',
                       map_location='cpu',
                       weights_only=False)['state_dict']
    assert not any(key.startswith('module.') for key in state)
    assert 'backbone.stem.0.weight' in state


@pytest.mark.parametrize('tool', ['mmseg', 'ours'])
def test_test_py_reports_mASSC_beside_mIoU(tool_run, tool):
    config, work, _ = tool_run
    script = (osp.join(MMSEG_TOOLS, 'test.py')
              if tool == 'mmseg' else osp.join(REPO_ROOT, 'tools', 'test.py'))
    out = work / f'test_{tool}'
    result = run_python([
        script,
        str(config),
        str(work / 'iter_2.pth'), '--work-dir',
        str(out)
    ],
                        cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    found = [
        json.loads(line) for path in out.rglob('*.json')
        for line in path.read_text().splitlines() if '"mASSC"' in line
    ]
    assert found, result.stdout[-2000:]
    for key in ('mIoU', 'mASSC', 'mASSC_circular', 'shift_mIoU'):
        assert key in found[0], key
    assert 0 <= found[0]['mASSC'] <= 100
