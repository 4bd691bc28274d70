# DeepLabV3+ R18-D8: what mmseg's deeplabv3plus_r18-d8 Cityscapes config
# changes in its R50 one (ImageNet ResNet-18 V1c weights, depth 18, the head
# and auxiliary head narrowed to ResNet-18's widths). For the recipes mmseg
# has no R18 config of; a config merges it with `model = _base_.r18_model`.
r18_model = dict(
    pretrained='open-mmlab://resnet18_v1c',
    backbone=dict(depth=18),
    decode_head=dict(
        c1_in_channels=64, c1_channels=12, in_channels=512, channels=128),
    auxiliary_head=dict(in_channels=256, channels=64))
