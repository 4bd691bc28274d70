_base_ = ['./_base_toy.py', '../_base_/models/vanilla.py']
model = _base_.vanilla_model
