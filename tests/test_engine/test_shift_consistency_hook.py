"""ShiftConsistencyHook in mmengine's real Runner on a tiny on-disk dataset."""
import json
import os
import socket

import numpy as np
import pytest
import torch
import torch.distributed as torch_dist
import torch.multiprocessing as mp
from mmengine.runner import Runner
from PIL import Image

from tests.shift_toys import (build_model, pointwise_model_cfg, runner_cfg,
                        strided_model_cfg, write_dataset)
from tips_mmseg.evaluation import (ALL_SHIFT_METRIC_KEYS, EVAL_MODES,
                                   SHIFT_METRIC_KEYS)
from tips_mmseg.utils import shift_image

SHIFT = (3, -5)


def run_test(tmp_path, model, name, batch_size=2, hook=None, data='data'):
    runner = Runner(**runner_cfg(
        tmp_path / data, tmp_path / name, model, batch_size, hook,
        experiment_name=name))
    return runner.test()


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('shift')
    write_dataset(root / 'data')
    write_dataset(root / 'ignore', ignore_band=True)
    write_dataset(root / 'beyond', out_of_range=True)
    return root


@pytest.mark.parametrize('data', ['data', 'beyond'])
def test_zero_shift_reproduces_miou_and_aacc(dataset, data):
    """Also with label 7 on 3 classes: scored as IoUMetric scores it."""
    metrics = run_test(dataset, build_model(strided_model_cfg()),
                       f'zero_{data}', hook=dict(shifts=[(0, 0)]), data=data)
    assert set(SHIFT_METRIC_KEYS) <= set(metrics)
    for key in ('mASSC', 'mASSC_circular', 'mASSC_worst'):
        assert metrics[key] == 100.0
    # IoUMetric rounds to 2 decimals
    assert metrics['shift_mIoU'] == pytest.approx(metrics['mIoU'], abs=0.006)
    assert metrics['shift_fidelity'] == pytest.approx(metrics['aAcc'],
                                                      abs=0.006)
    assert metrics['mIoU'] < 100  # not trivially equal


def test_pointwise_is_consistent_and_strided_is_not(dataset):
    hook = dict(max_shift=8)
    pointwise = run_test(dataset, build_model(pointwise_model_cfg()), 'pw',
                         hook=hook)
    strided = run_test(dataset, build_model(strided_model_cfg()), 'st',
                       hook=hook)
    assert pointwise['mASSC'] == pointwise['mASSC_circular'] == 100.0
    assert strided['mASSC'] < 99 and strided['mASSC_circular'] < 99
    assert strided['mASSC_worst'] <= strided['mASSC']


def direct_scores(model, root, shift, ignore_index=255):
    """c(d), f(d) per image and IoU areas, by hand from the PNGs."""
    meta = dict(ori_shape=(32, 32), img_shape=(32, 32), pad_shape=(32, 32))
    prep = model.data_preprocessor
    consist, fidelity, inter, union = [], [], np.zeros(3), np.zeros(3)
    for name in sorted(os.listdir(root / 'img')):
        img = np.array(Image.open(root / 'img' / name))
        gt = torch.from_numpy(np.array(Image.open(root / 'ann' / name)))
        x = torch.from_numpy(img).permute(2, 0, 1).float()[None]
        x = (x - prep.mean) / prep.std  # RGB PNG read by mmcv as BGR->RGB
        with torch.no_grad():
            y = model.inference(x, [meta]).argmax(1)[0]
            y_d = model.inference(shift_image(x, shift), [meta]).argmax(1)[0]
        back = shift_image(y_d, (-shift[0], -shift[1]), fill=-1)
        overlap = back != -1
        consist.append((back == y)[overlap].double().mean().item())
        valid = overlap & (gt != ignore_index)
        fidelity.append(((back == y) & (y == gt))[valid].double().mean()
                        .item())
        for c in range(3):
            inter[c] += ((back == c) & (gt == c) & valid).sum().item()
            union[c] += (((back == c) | (gt == c)) & valid).sum().item()
    return consist, fidelity, np.nanmean(inter / union) * 100


@pytest.mark.parametrize('data', ['data', 'ignore'])
def test_hook_numbers_equal_a_direct_computation(dataset, data):
    model = build_model(strided_model_cfg())
    metrics = run_test(dataset, model, f'direct_{data}',
                       hook=dict(shifts=[SHIFT]), data=data)
    consist, fidelity, miou = direct_scores(model, dataset / data, SHIFT)
    assert metrics['mASSC'] == pytest.approx(np.mean(consist) * 100)
    assert metrics['mASSC_worst'] == pytest.approx(np.mean(consist) * 100)
    assert metrics['shift_fidelity'] == pytest.approx(np.mean(fidelity) * 100)
    assert metrics['shift_mIoU'] == pytest.approx(miou)


def test_ignore_index_comes_from_the_metric(dataset):
    """Ignored pixels change the ground-truth scores, not consistency."""
    model = build_model(strided_model_cfg())
    plain = run_test(dataset, model, 'ig1', hook=dict(shifts=[SHIFT]))
    band = run_test(dataset, model, 'ig2', hook=dict(shifts=[SHIFT]),
                    data='ignore')
    assert band['mASSC'] == plain['mASSC']  # same images, labels unused
    assert band['shift_fidelity'] != plain['shift_fidelity']
    _, fidelity, _ = direct_scores(model, dataset / 'ignore', SHIFT)
    assert band['shift_fidelity'] == pytest.approx(np.mean(fidelity) * 100)


def test_deterministic_across_batch_sizes_and_runs(dataset):
    model = build_model(strided_model_cfg())
    hook = dict(num_shifts=3, max_shift=6, seed=3, modes=EVAL_MODES,
                shift_batch_size=4)
    runs = [run_test(dataset, model, f'bs{bs}_{i}', batch_size=bs, hook=hook)
            for i, bs in enumerate([2, 2, 1, 3])]
    shift_keys = [{k: r[k] for k in ALL_SHIFT_METRIC_KEYS} for r in runs]
    assert all(keys == shift_keys[0] for keys in shift_keys)
    other_seed = run_test(dataset, model, 'seed4',
                          hook=dict(num_shifts=3, max_shift=6, seed=4))
    assert other_seed['mASSC'] != runs[0]['mASSC']


def test_shift_larger_than_the_image_fails_clearly(dataset):
    model = build_model(pointwise_model_cfg())
    calls = []
    original = model.inference
    model.inference = lambda *a: calls.append(1) or original(*a)
    with pytest.raises(ValueError, match=r'the test images \(checked on '
                       r'the first, 32x32 px .*before the first forward\): '
                       r'shift \(32, 32\) is larger than the image 32x32; '
                       r'use max_shift < 32'):
        run_test(dataset, model, 'big')
    assert not calls  # not one forward pass was spent
    with pytest.raises(ValueError, match=r'use max_shift <= 15'):
        run_test(dataset, model, 'big_crop',
                 hook=dict(max_shift=16, modes=('crop', )))


def test_oversize_shift_fails_before_the_first_training_iteration(dataset):
    """Item of issue 11: max_shift=100 on 32 px val images stops the run
    in before_train, not after hours of training."""
    model = build_model(pointwise_model_cfg())
    loader = runner_cfg(dataset / 'data', dataset / 'train', model)
    runner = Runner(
        model=model,
        work_dir=str(dataset / 'train'),
        train_dataloader=dict(
            loader['test_dataloader'],
            sampler=dict(type='InfiniteSampler', shuffle=False)),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=2,
                       val_interval=2),
        val_dataloader=loader['test_dataloader'],
        val_evaluator=loader['test_evaluator'],
        val_cfg=dict(type='ValLoop'),
        custom_hooks=[dict(type='ShiftConsistencyHook', max_shift=100)],
        default_scope='mmseg',
        log_level='WARNING')
    with pytest.raises(ValueError, match=r'ShiftConsistencyHook does not '
                       r'fit the val images.*before training starts\): '
                       r'shift \(100, 100\) is larger than the image '
                       r'32x32; use max_shift < 32'):
        runner.train()
    assert runner.iter == 0


def test_val_metrics_reach_message_hub_and_json_logs(dataset):
    """RuntimeInfoHook / LoggerHook see the keys: they come out of the
    evaluator (the hook only inserts the metric), whatever the hook order."""
    model = build_model(strided_model_cfg())
    loader = runner_cfg(dataset / 'data', dataset / 'val', model)
    runner = Runner(
        model=model,
        work_dir=str(dataset / 'val'),
        val_dataloader=loader['test_dataloader'],
        val_evaluator=loader['test_evaluator'],
        val_cfg=dict(type='ValLoop'),
        custom_hooks=[dict(type='ShiftConsistencyHook', max_shift=4)],
        default_scope='mmseg',
        # A name of its own: mmengine keeps one Visualizer per name, and the
        # default name (config + timestamp) can match another Runner's built
        # in the same second in this process, whose save_dir it would keep.
        visualizer=dict(
            type='Visualizer', name=f'shift_hook_json_{id(dataset)}',
            vis_backends=[dict(type='LocalVisBackend')]),
        log_level='WARNING')
    metrics = runner.val()
    hub = runner.message_hub
    for key in SHIFT_METRIC_KEYS:
        assert hub.get_scalar(f'val/{key}').current() == metrics[key]
    scalars = list((dataset / 'val').rglob('scalars.json'))
    assert scalars, 'LocalVisBackend wrote no scalars.json'
    logged = json.loads(scalars[0].read_text().splitlines()[-1])
    assert logged['mASSC'] == pytest.approx(metrics['mASSC'], abs=1e-3)


def _free_port():
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def _worker(rank, world_size, port, root, out, hook):
    """One of N gloo processes: the Runner sees the initialised group."""
    torch.set_num_threads(1)
    torch_dist.init_process_group(
        'gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank,
        world_size=world_size)
    model = build_model(strided_model_cfg())
    metrics = Runner(**runner_cfg(
        root / 'data', root / f'dist{world_size}', model, 2, hook,
        experiment_name=f'dist{world_size}_{rank}')).test()
    with open(out / f'rank{rank}.json', 'w') as f:
        json.dump({k: float(v) for k, v in metrics.items()}, f)
    torch_dist.destroy_process_group()


def test_one_and_two_processes_give_identical_numbers(dataset, tmp_path):
    hook = dict(num_shifts=2, max_shift=6, modes=EVAL_MODES)
    single = run_test(dataset, build_model(strided_model_cfg()), 'single',
                      hook=hook)
    mp.spawn(_worker, args=(2, _free_port(), dataset, tmp_path, hook),
             nprocs=2, join=True)
    for rank in range(2):
        multi = json.loads((tmp_path / f'rank{rank}.json').read_text())
        for key in ALL_SHIFT_METRIC_KEYS:
            assert multi[key] == single[key], key
