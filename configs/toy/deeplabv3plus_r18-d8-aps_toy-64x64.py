_base_ = ['./_base_toy.py', '../_base_/models/aps.py']
model = _base_.aps_model
