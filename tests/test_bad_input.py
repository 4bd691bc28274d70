"""Bad input: one test per row of docs/bad_input.md (input -> message)."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.runner import Runner
from mmseg.registry import MODELS

from tests.helpers import REPO_ROOT, enable_compat, run_python
from tests.test_models.test_regularized_segmentor import batch
from tips_mmseg.models.layers import DOWNSAMPLE_LAYERS, build_downsample
from tips_mmseg.utils import check_shift, explain_errors

TIPS_TOY = osp.join(REPO_ROOT, 'configs', 'toy',
                    'deeplabv3plus_r18-d8-tips_toy-64x64.py')


@pytest.fixture(scope='module')
def toy_model():
    """The toy TIPS DeepLabV3+ R18-D8 (total stride 8, ASPP image pool)."""
    init_default_scope('mmseg')
    cfg = Config.fromfile(TIPS_TOY)
    cfg.model.data_preprocessor = None
    return MODELS.build(cfg.model)


def infer(model, x):
    size = tuple(x.shape[-2:])
    meta = dict(img_shape=size, ori_shape=size, pad_shape=size)
    with torch.no_grad():
        return model.eval().inference(x, [meta] * len(x))


@pytest.mark.parametrize('layer', DOWNSAMPLE_LAYERS)
@pytest.mark.parametrize('size', [(1, 1), (1, 2), (3, 5), (7, 7)])
def test_odd_and_1x1_feature_maps_give_ceil_half(layer, size):
    down = build_downsample(layer, 4)
    for mode in (True, False):
        y = down.train(mode)(torch.randn(2, 4, *size))
        assert y.shape == (2, 4, (size[0] + 1) // 2, (size[1] + 1) // 2)
        assert torch.isfinite(y).all()


@pytest.mark.parametrize('side', [1, 5, 7])
def test_images_smaller_than_the_total_stride_work(toy_model, side):
    logits = infer(toy_model, torch.randn(2, 3, side, side))
    assert logits.shape == (2, 5, side, side)
    assert torch.isfinite(logits).all()


def test_batch_of_one_with_batchnorm_says_how_to_fix(toy_model):
    inputs, samples = batch(n=1, size=32)
    toy_model.train()
    with pytest.raises(ValueError, match=r'batch_size >= 2') as info:
        with explain_errors():
            toy_model.loss(inputs, samples)
    assert 'Expected more than 1 value per channel' in str(info.value)
    toy_model.loss(*batch(n=2, size=32))  # two samples train


def test_wrong_channel_count_names_the_channels():
    with pytest.raises(ValueError, match=r'TIPS\(channels=8\) got an input '
                       r'with 4 channels; build it with channels=4'):
        build_downsample('TIPS', 8)(torch.randn(1, 4, 8, 8))


def test_unknown_layer_name_lists_the_choices():
    with pytest.raises(KeyError, match=r"Unknown downsampling layer 'TIPZ'; "
                       r"choose one of \('TIPS', 'BlurPool', 'APS', 'LPS'\)"):
        build_downsample(dict(type='TIPZ'), 8)


def test_unknown_backbone_type_suggests_close_names():
    init_default_scope('mmseg')
    with pytest.raises(KeyError, match=r"Unknown model type "
                       r"'ShiftInvariantResnetV1c'.*did you mean "
                       r"\['ShiftInvariantResNetV1c'.*custom_imports"):
        with explain_errors():
            MODELS.build(dict(type='ShiftInvariantResnetV1c', depth=18))


def test_shift_larger_than_the_image_names_the_limit():
    with pytest.raises(ValueError, match=r'shift \(40, 0\) is larger than '
                       r'the image 32x32; use max_shift < 32'):
        check_shift((40, 0), (32, 32))


def voc_loader(root, ann_file='ImageSets/Segmentation/train.txt',
               dataset='PascalVOCDataset'):
    return dict(
        batch_size=2, num_workers=0, sampler=dict(type='DefaultSampler'),
        dataset=dict(
            type=dataset, data_root=str(root), ann_file=ann_file,
            data_prefix=dict(img_path='JPEGImages',
                             seg_map_path='SegmentationClass'),
            pipeline=[]))


@pytest.fixture
def dataset_checks(monkeypatch):
    """Opt-in (tips_mmseg.compat.enable(), which our tools call)."""
    enable_compat(monkeypatch, cpu_distributed=False)


def test_missing_data_root_names_the_path_and_fix(tmp_path, dataset_checks):
    init_default_scope('mmseg')
    with pytest.raises(FileNotFoundError, match=r"PascalVOCDataset: "
                       r"data_root '.*nowhere' does not exist.*--cfg-options "
                       r'train_dataloader.dataset.data_root='):
        Runner.build_dataloader(voc_loader(tmp_path / 'nowhere'))
    (tmp_path / 'JPEGImages').mkdir()
    with pytest.raises(FileNotFoundError, match=r'split file .*train.txt'):
        Runner.build_dataloader(voc_loader(tmp_path))


@pytest.mark.parametrize('ann_file,dataset,match', [
    ('ImageSets/Segmentation/train.txt', 'PascalVOCDataset',
     r'PascalVOCDataset is empty: the split file .*train.txt.* lists no '
     r'images'),
    ('', 'ADE20KDataset',
     r"ADE20KDataset is empty: no image in '.*JPEGImages' has the suffix"),
])
def test_empty_split_is_an_error_not_a_crash(tmp_path, ann_file, dataset,
                                             match, dataset_checks):
    init_default_scope('mmseg')
    for sub in ('JPEGImages', 'SegmentationClass', 'ImageSets/Segmentation'):
        (tmp_path / sub).mkdir(parents=True)
    (tmp_path / 'ImageSets/Segmentation/train.txt').write_text('')
    with pytest.raises(ValueError, match=match):
        Runner.build_dataloader(voc_loader(tmp_path, ann_file, dataset))


def test_amp_without_a_gpu_is_refused_by_tools_train(tmp_path):
    result = run_python(
        [osp.join(REPO_ROOT, 'tools', 'train.py'), TIPS_TOY, '--amp',
         '--work-dir', str(tmp_path)], cwd=REPO_ROOT)
    assert result.returncode != 0
    assert '--amp (mixed precision) needs a GPU' in result.stderr
    assert 'drop --amp' in result.stderr
    assert not list(tmp_path.iterdir())  # refused before anything ran


def test_nan_in_the_input_is_an_error_not_nan_metrics(toy_model):
    x = torch.randn(2, 3, 16, 16)
    x[1, 0, 3, 4] = float('nan')
    with pytest.raises(ValueError, match=r'ShiftInvariantResNetV1c got NaN '
                       r'or Inf in the input of batch item\(s\) \[1\]'):
        infer(toy_model, x)
    x[1, 0, 3, 4] = float('inf')
    with pytest.raises(ValueError, match='NaN or Inf'):
        toy_model.train().loss(x, batch(n=2, size=16)[1])


def test_datasets_that_are_not_mmseg_s_build_as_in_mmengine(dataset_checks):
    from mmengine.dataset import BaseDataset
    from mmengine.registry import DATASETS

    @DATASETS.register_module(name='BadInputStream', force=True)
    class Stream(torch.utils.data.IterableDataset):

        def __iter__(self):
            return iter(range(3))

    @DATASETS.register_module(name='BadInputEmpty', force=True)
    class Empty(BaseDataset):

        def load_data_list(self):
            return []

    loader = Runner.build_dataloader(dict(
        dataset=dict(type='BadInputStream'), sampler=None, batch_size=3,
        collate_fn=dict(type='default_collate')))
    assert [b.tolist() for b in loader] == [[0, 1, 2]]
    loader = Runner.build_dataloader(dict(
        dataset=dict(type='BadInputEmpty', serialize_data=False),
        sampler=dict(type='DefaultSampler', shuffle=False), batch_size=2))
    assert len(loader.dataset) == 0  # no mmseg "split is empty" error


def test_label_outside_the_classes_and_wrong_size_name_the_file():
    import numpy as np
    from tips_mmseg.datasets import CheckSegLabels
    results = dict(gt_seg_map=np.full((4, 4), 9, np.uint8), ori_shape=(4, 4),
                   seg_map_path='lbl/a.png', img_path='img/a.jpg')
    with pytest.raises(ValueError, match=r'Label map lbl/a.png \(image '
                       r'img/a.jpg\) has label values \[9\]'):
        CheckSegLabels(num_classes=5)(results)
    results['ori_shape'] = (4, 5)
    with pytest.raises(ValueError, match=r'lbl/a.png is 4x4 \(HxW\) but its '
                       r'image img/a.jpg is 4x5'):
        CheckSegLabels(num_classes=10)(results)


def test_truncated_checkpoint_names_its_path(tmp_path):
    from mmengine.runner import load_checkpoint

    from tips_mmseg.utils import safe_checkpoint_path
    path = tmp_path / 'model.pth'
    torch.save({'state_dict': {'w': torch.ones(99)}}, path)
    path.write_bytes(path.read_bytes()[:400])
    with pytest.raises(RuntimeError, match=f"Checkpoint '{path}' does not "
                       'load: truncated'):
        load_checkpoint(torch.nn.Linear(1, 1), safe_checkpoint_path(path))
