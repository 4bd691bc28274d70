_base_ = ['./_base_toy.py', '../_base_/models/blurpool.py']
model = _base_.blurpool_model
