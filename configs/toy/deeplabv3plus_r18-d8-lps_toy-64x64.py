_base_ = ['./_base_toy.py', '../_base_/models/lps.py']
model = _base_.lps_model
custom_hooks = _base_.lps_hooks + _base_.custom_hooks
