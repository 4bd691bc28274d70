"""A clear error for NaN or Inf in a backbone's input."""
import torch


def check_finite_input(module: torch.nn.Module, x: torch.Tensor):
    """Raise ``ValueError`` if ``x`` holds NaN or Inf values.

    A non-finite input makes every prediction of its image meaningless and
    turns losses into NaN; the metrics would not say why. One reduction per
    forward (and, on GPUs, one synchronization) is the price.

    Args:
        module (nn.Module): The backbone (named in the message).
        x (Tensor): Its (N, C, H, W) input.
    """
    finite = torch.isfinite(x)
    if bool(finite.all()):
        return
    bad = (~finite).flatten(1).any(dim=1).nonzero().flatten().tolist()
    raise ValueError(
        f'{type(module).__name__} got NaN or Inf in the input of batch '
        f'item(s) {bad}: check those images (float images or a transform '
        'producing NaN) and the data preprocessor (std must not be 0).')
