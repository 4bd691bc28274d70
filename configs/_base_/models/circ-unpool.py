# Exact equivariance to circular shifts (eval): circular padding in every
# conv of the backbone and the head, and UnpoolDepthwiseSeparableASPPHead
# (polyphase unpooling into the component the backbone kept, then a fixed
# circular bilinear filter). TIPSEncoderDecoder hands the kept components
# from the backbone to the head. The auxiliary head (training only) still
# upsamples bilinearly. ./aps-circ-unpool.py and ./lps-circ-unpool.py merge
# it into their downsampler's model.
circ_unpool_model = dict(
    type='TIPSEncoderDecoder',
    backbone=dict(circular_padding=True),
    decode_head=dict(
        type='UnpoolDepthwiseSeparableASPPHead', circular_padding=True))
