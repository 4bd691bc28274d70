# APS (./aps.py) with circular padding and polyphase unpooling in the head
# (./circ-unpool.py): the segmentor is exactly equivariant to circular shifts.
_base_ = ['./aps.py', './circ-unpool.py']
aps_model = _base_.circ_unpool_model
