_base_ = ['./_base_toy.py']
