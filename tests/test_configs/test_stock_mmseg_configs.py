"""mmseg's own configs train with only backbone.type='TIPSResNetV1c'
changed (plus custom_imports): the drop-in promise."""
import pytest
from mmengine.config import Config

from conftest import model_cfg_for_test, one_train_step

STOCK = [
    'mmseg::deeplabv3plus/deeplabv3plus_r50-d8_4xb4-20k_voc12aug-512x512.py',
    'mmseg::pspnet/pspnet_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'mmseg::fcn/fcn_r50-d8_4xb2-40k_cityscapes-512x1024.py',
    'mmseg::deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py',
]


@pytest.mark.parametrize('base', STOCK, ids=lambda s: s.split('/')[-1])
def test_stock_config_with_tips_backbone(base, tmp_path):
    cfg_file = tmp_path / 'cfg.py'
    cfg_file.write_text(
        f"_base_ = ['{base}']\n"
        "custom_imports = dict(imports=['tips_mmseg'], "
        'allow_failed_imports=False)\n'
        "model = dict(backbone=dict(type='TIPSResNetV1c'))\n")
    cfg = Config.fromfile(str(cfg_file))
    model_cfg = model_cfg_for_test(cfg)
    assert model_cfg['backbone']['type'] == 'TIPSResNetV1c'
    with pytest.warns(UserWarning, match='NOT applied'):
        model, log_vars = one_train_step(model_cfg)
    assert type(model.backbone).__name__ == 'TIPSResNetV1c'
    assert 'decode.loss_ce' in log_vars
