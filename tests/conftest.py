"""Shared test set-up: CPU only, small, deterministic."""
import os

import pytest
import torch

# Two xdist workers on two cores: one thread each keeps them from fighting.
torch.set_num_threads(1)
os.environ.setdefault('OMP_NUM_THREADS', '1')


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
