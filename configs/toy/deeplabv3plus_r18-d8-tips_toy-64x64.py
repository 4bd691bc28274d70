_base_ = ['./_base_toy.py', '../_base_/models/tips.py']
# The regularizers at their defaults (../_base_/models/tips-segmentor.py).
model = _base_.tips_model
custom_hooks = _base_.tips_hooks + _base_.custom_hooks
