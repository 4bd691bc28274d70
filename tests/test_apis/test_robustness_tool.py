"""evaluate_robustness and tools/robustness.py end to end on the toy set-up."""
import json

import numpy as np
import pytest
import torch

from tests.helpers import load_tool
from tips_mmseg.apis import evaluate_robustness
from tips_mmseg.apis.robustness import (build_test_dataloader,
                                        evaluate_segmentor, insert_corruption)


@pytest.fixture
def config_file(toy_cfg, tmp_path):
    path = str(tmp_path / 'toy_config.py')
    toy_cfg.dump(path)
    return path


def test_tool_writes_json_table_and_plot(config_file, trained_toy_model,
                                         toy_cfg, tmp_path, capsys):
    checkpoint = str(tmp_path / 'toy.pth')
    torch.save({'state_dict': trained_toy_model.state_dict()}, checkpoint)
    out = tmp_path / 'out' / 'robustness.json'
    load_tool('robustness').main([
        config_file, checkpoint, '--num-images', '4', '--corruptions',
        'gaussian_noise,jpeg', '--severities', '0,1,5', '--attacks',
        'fgsm,pgd', '--eps', '4', '--pgd-steps', '2', '--device', 'cpu',
        '--out', str(out)
    ])

    results = json.loads(out.read_text())
    assert set(results) >= {'clean', 'corruptions', 'attacks', 'mCorr-mIoU'}
    assert set(results['corruptions']) == {'gaussian_noise', 'jpeg'}
    assert set(results['attacks']) == {'fgsm', 'pgd'}
    assert results['settings']['num_images'] == 4
    clean = results['clean']['mIoU']
    # The checkpoint was loaded: same mIoU as the trained model in memory.
    expected = evaluate_segmentor(
        trained_toy_model, build_test_dataloader(toy_cfg, num_images=4),
        toy_cfg.test_evaluator)['mIoU']
    assert clean == pytest.approx(expected)
    for per_severity in results['corruptions'].values():
        assert set(per_severity) == {'0', '1', '5'}
        assert per_severity['0']['mIoU'] == clean  # severity 0 is identity
        assert per_severity['5']['mIoU'] != clean
    all_corrupted = [m['mIoU'] for per_severity in
                     results['corruptions'].values()
                     for m in per_severity.values()]
    assert results['mCorr-mIoU'] == pytest.approx(np.mean(all_corrupted))
    assert results['attacks']['pgd']['mIoU'] <= clean
    assert results['attacks']['pgd']['eps'] == 4

    png = tmp_path / 'out' / 'robustness.png'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    printed = capsys.readouterr().out
    assert 'mCorr-mIoU' in printed and 'gaussian_noise' in printed


def test_untrained_net_without_corruptions(toy_cfg):
    results = evaluate_robustness(
        toy_cfg, num_images=2, corruptions=[], attacks=['fgsm'], eps=2,
        device='cpu', show_progress=False)
    assert results['corruptions'] == {}
    assert results['mCorr-mIoU'] is None
    assert 0 <= results['attacks']['fgsm']['mIoU'] <= 100
    assert results['settings']['checkpoint'] is None


def test_corruption_inserted_after_loader():
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations'),
        dict(type='PackSegInputs')
    ]
    new = insert_corruption(pipeline, 'contrast', 2, seed=7)
    assert [t['type'] for t in new] == [
        'LoadImageFromFile', 'ImageCorruption', 'LoadAnnotations',
        'PackSegInputs'
    ]
    assert new[1] == dict(
        type='ImageCorruption', corruption='contrast', severity=2, seed=7)
    assert len(pipeline) == 3  # the input is not modified
    with pytest.raises(ValueError, match='LoadImageFromFile'):
        insert_corruption(pipeline[1:], 'contrast', 2)


@pytest.mark.parametrize('kwargs, match', [
    (dict(attacks=['deepfool']), 'fgsm, pgd'),
    (dict(corruptions=['snow']), 'gaussian_noise'),
    (dict(severities=[6]), '0..5'),
    (dict(eps=-1), 'eps'),
])
def test_bad_arguments_fail_before_any_work(toy_cfg, kwargs, match):
    with pytest.raises(ValueError, match=match):
        evaluate_robustness(toy_cfg, show_progress=False, **kwargs)
