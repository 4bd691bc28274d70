"""ShiftPredictor + per-image scoring on real mmseg EncoderDecoders (whole,
slide, mixed sizes)."""
import numpy as np
import pytest
import torch
from mmseg.structures import SegDataSample
from mmengine.structures import PixelData

from tests.shift_toys import build_model, pointwise_model_cfg, strided_model_cfg
from tips_mmseg.evaluation import (ShiftConsistencyMetric,
                                   aligned_ground_truth, score_image)
from tips_mmseg.models.segmentors.shift_tta import (ShiftPredictor,
                                                    logits_to_labels)
from tips_mmseg.utils import shift_image

SHIFTS = [(1, 0), (0, 3), (-5, 2), (7, -7)]


def make_batch(sizes, canvas):
    """Normalized images of the given sizes padded into one batch."""
    torch.manual_seed(1)
    inputs = torch.zeros(len(sizes), 3, *canvas)
    samples = []
    for i, (h, w) in enumerate(sizes):
        inputs[i, :, :h, :w] = torch.randn(3, h, w)
        sample = SegDataSample(metainfo=dict(
            img_shape=(h, w), ori_shape=(h, w), pad_shape=canvas,
            padding_size=[0, canvas[1] - w, 0, canvas[0] - h]))
        sample.gt_sem_seg = PixelData(
            data=torch.randint(0, 3, (1, h, w)))
        samples.append(sample)
    return inputs, samples


def evaluate(model, inputs, samples, **kwargs):
    """Shifted predictions of a batch, scored image by image."""
    predictor = ShiftPredictor(shifts=SHIFTS, **kwargs)
    metas = [s.metainfo for s in samples]
    with torch.no_grad():
        ref = logits_to_labels(model, model.inference(inputs, metas),
                               inputs.shape[-2:])
    shifted = predictor.predict(model, inputs, samples, ref,
                                range(len(samples)))
    records = []
    for extra, sample in zip(shifted, samples):
        top, bottom, left, right = extra['box']
        gt = aligned_ground_truth(sample.gt_sem_seg.data, sample.metainfo,
                                  (bottom - top, right - left))
        records.append(score_image(extra, gt))
    return records


def test_pointwise_segmentor_is_fully_consistent_in_both_modes():
    model = build_model(pointwise_model_cfg())
    inputs, samples = make_batch([(32, 32)] * 2, (32, 32))
    for record in evaluate(model, inputs, samples):
        assert record['standard'].tolist() == [1.0] * len(SHIFTS)
        assert record['circular'].tolist() == [1.0] * len(SHIFTS)


def test_strided_segmentor_is_not_consistent():
    model = build_model(strided_model_cfg())
    inputs, samples = make_batch([(32, 32)] * 2, (32, 32))
    records = evaluate(model, inputs, samples)
    assert min(r['standard'].min() for r in records) < 0.95
    assert min(r['circular'].min() for r in records) < 0.95


def test_numbers_equal_a_direct_computation():
    model = build_model(strided_model_cfg())
    inputs, samples = make_batch([(32, 32)], (32, 32))
    record = evaluate(model, inputs, samples)[0]
    meta = [samples[0].metainfo]
    with torch.no_grad():
        y = model.inference(inputs, meta).argmax(1)[0]
        for k, (dh, dw) in enumerate(SHIFTS):
            x_d = shift_image(inputs, (dh, dw))
            y_d = model.inference(x_d, meta).argmax(1)[0]
            h, w = 32, 32
            agree = total = 0
            for i in range(h):
                for j in range(w):
                    if 0 <= i - dh < h and 0 <= j - dw < w:
                        total += 1
                        agree += int(y_d[i, j] == y[i - dh, j - dw])
            assert record['standard'][k] == pytest.approx(agree / total)
            y_c = model.inference(shift_image(inputs, (dh, dw), 'circular'),
                                  meta).argmax(1)[0]
            expected = (y_c == torch.roll(y, (dh, dw), (0, 1))).double()
            assert record['circular'][k] == pytest.approx(
                expected.mean().item())


def test_sliding_window_inference_is_supported():
    slide = dict(mode='slide', crop_size=(16, 16), stride=(8, 8))
    inputs, samples = make_batch([(32, 32)], (32, 32))
    pointwise = evaluate(build_model(pointwise_model_cfg(slide)), inputs,
                         samples)[0]
    assert pointwise['standard'].tolist() == [1.0] * len(SHIFTS)
    strided_slide = evaluate(build_model(strided_model_cfg(slide)), inputs,
                             samples)[0]
    strided_whole = evaluate(build_model(strided_model_cfg()), inputs,
                             samples)[0]
    # same weights, other inference: other numbers, so slide really ran
    assert strided_slide['standard'].tolist() != \
        strided_whole['standard'].tolist()


def test_mixed_sizes_in_one_batch_score_each_image_as_alone():
    model = build_model(pointwise_model_cfg())
    inputs, samples = make_batch([(32, 32), (20, 24)], (32, 32))
    mixed = evaluate(model, inputs, samples)
    alone = evaluate(model, inputs[1:, :, :20, :24],
                     [SegDataSample(metainfo=dict(img_shape=(20, 24),
                                                  ori_shape=(20, 24)),
                                    gt_sem_seg=samples[1].gt_sem_seg)])
    assert mixed[1]['standard'].tolist() == alone[0]['standard'].tolist()
    assert mixed[1]['fidelity'].tolist() == alone[0]['fidelity'].tolist()
    # the strided net sees each image in its box too
    records = evaluate(build_model(strided_model_cfg()), inputs, samples)
    assert len(records) == 2 and records[1]['standard'].shape == (4, )


def test_shift_larger_than_a_padded_image_is_a_clear_error():
    model = build_model(pointwise_model_cfg())
    inputs, samples = make_batch([(32, 32), (6, 24)], (32, 32))
    with pytest.raises(ValueError, match=r'larger than the image 6x24; use '
                       r'max_shift < 6'):
        evaluate(model, inputs, samples)


ALL_MODES = ('standard', 'circular', 'crop', 'subpixel')
SUBPIXEL = [(0.5, 0.0), (-0.25, 0.75)]


def test_crop_and_subpixel_equal_a_direct_computation():
    from tips_mmseg.utils.shift_ops import fourier_shift
    model = build_model(strided_model_cfg())
    inputs, samples = make_batch([(32, 32)], (32, 32))
    record = evaluate(model, inputs, samples, modes=ALL_MODES,
                      subpixel_shifts=SUBPIXEL)[0]
    margin = 7  # largest |dh|, |dw| of SHIFTS
    size = 32 - margin

    def labels(x):
        meta = dict(img_shape=x.shape[-2:], ori_shape=x.shape[-2:],
                    pad_shape=x.shape[-2:])
        with torch.no_grad():
            return model.inference(x, [meta]).argmax(1)[0]

    for k, (dh, dw) in enumerate(SHIFTS):
        # two windows: B's content is A's moved by (dh, dw)
        ta, la = max(dh, 0), max(dw, 0)
        tb, lb = ta - dh, la - dw
        a = labels(inputs[:, :, ta:ta + size, la:la + size])
        b = labels(inputs[:, :, tb:tb + size, lb:lb + size])
        agree = total = 0
        for i in range(32):  # image pixels seen by both windows
            for j in range(32):
                if (ta <= i < ta + size and la <= j < la + size
                        and tb <= i < tb + size and lb <= j < lb + size):
                    total += 1
                    agree += int(a[i - ta, j - la] == b[i - tb, j - lb])
        assert record['crop'][k] == pytest.approx(agree / total)
    y = labels(inputs)
    with torch.no_grad():
        for k, (dh, dw) in enumerate(SUBPIXEL):
            x_d = fourier_shift(inputs[0], [(dh, dw)])
            logits = model.inference(x_d, [dict(img_shape=(32, 32),
                                                 ori_shape=(32, 32))])
            back = fourier_shift(logits[0], [(-dh, -dw)])[0].argmax(0)
            bh, bw = int(np.ceil(abs(dh))) + 1, int(np.ceil(abs(dw))) + 1
            inner = (slice(bh, 32 - bh), slice(bw, 32 - bw))
            expected = (back[inner] == y[inner]).double().mean().item()
            assert record['subpixel'][k] == pytest.approx(expected)
    assert record['subpixel_shifts'] == SUBPIXEL


def test_new_modes_mixed_sizes_and_slide():
    inputs, samples = make_batch([(32, 32), (20, 24)], (32, 32))
    alone_sample = SegDataSample(
        metainfo=dict(img_shape=(20, 24), ori_shape=(20, 24)),
        gt_sem_seg=samples[1].gt_sem_seg)
    # crop windows are cut from the image and run alone, whatever the net;
    # the other modes see the padded canvas, which only a pointwise net
    # ignores
    for cfg, keys in ((strided_model_cfg(), ('crop', )),
                      (pointwise_model_cfg(), ('crop', 'subpixel',
                                               'boundary'))):
        model = build_model(cfg)
        mixed = evaluate(model, inputs, samples, modes=ALL_MODES,
                         subpixel_shifts=SUBPIXEL)
        alone = evaluate(model, inputs[1:, :, :20, :24], [alone_sample],
                         modes=ALL_MODES, subpixel_shifts=SUBPIXEL)
        for key in keys:
            assert mixed[1][key].tolist() == pytest.approx(
                alone[0][key].tolist(), abs=1e-12), key
    slide = dict(mode='slide', crop_size=(16, 16), stride=(8, 8))
    pointwise = evaluate(build_model(pointwise_model_cfg(slide)), inputs,
                         samples, modes=ALL_MODES, subpixel_shifts=SUBPIXEL)
    for record in pointwise:
        assert record['crop'].tolist() == [1.0] * len(SHIFTS)
        assert record['subpixel'].min() > 0.5


def test_bad_mode_and_shift_settings_fail_clearly():
    with pytest.raises(ValueError, match="'boundary' is not a mode of its "
                       "own.*add 'standard'"):
        ShiftPredictor(modes=('boundary', ))
    with pytest.raises(ValueError, match='Unknown shift-consistency mode'):
        ShiftPredictor(modes=('reflect', ))
    with pytest.raises(ValueError, match='shifts are whole pixels.*'
                       'subpixel_shifts'):
        ShiftPredictor(shifts=[(0.5, 0)])
    with pytest.raises(ValueError, match='boundary_width'):
        ShiftConsistencyMetric(boundary_width=0)
    with pytest.raises(TypeError, match=r"model options \['max_shift'\]: "
                       r"the shifts are drawn by the model wrapper"):
        ShiftConsistencyMetric(max_shift=4)
    model = build_model(pointwise_model_cfg())
    inputs, samples = make_batch([(32, 32)], (32, 32))
    with pytest.raises(ValueError, match=r'crop protocol needs 2 \* '
                       r'max_shift < 32: use max_shift <= 15'):
        ShiftPredictor(shifts=[(16, 0)], modes=('crop', )).predict(
            model, inputs, samples, inputs[:, 0].long(), [0])
