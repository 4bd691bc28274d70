"""L_inf adversarial attacks (FGSM, PGD) on mmseg segmentors, in pixel space.

The attack perturbs the raw image tensors that the dataloader hands to the
model's ``SegDataPreProcessor`` (0..255, the dataset's channel order), and
differentiates through the preprocessor (channel swap, normalisation,
padding) and the network. ``eps`` is therefore in 0..255 pixel units, the
same for every model and normalisation, and the adversarial image is a
valid image: inside [0, 255] and inside the eps ball around the clean one.

The loss is the per-pixel cross-entropy of the model's test-time logits
(``model.predict``: whole or sliding-window inference, padding removed,
resized to the ground truth's shape) against the ground truth, ignoring the
decode head's ``ignore_index``; averaged per image and summed over the batch,
so every image is attacked as if it were alone.
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from mmseg.structures import SegDataSample
from torch import Tensor

from tips_mmseg.datasets.transforms.corruptions import per_image_seed


def segmentation_loss(model: torch.nn.Module, images: Sequence[Tensor],
                      data_samples: Sequence[SegDataSample]) -> Tensor:
    """Test-time segmentation loss of ``model`` on raw images.

    Args:
        model (nn.Module): An mmseg segmentor (``EncoderDecoder`` or alike)
            with a ``data_preprocessor``, in eval mode.
        images (Sequence[Tensor]): Raw images (C, H, W), float, 0..255, as
            the dataloader delivers them (possibly of different sizes).
        data_samples (Sequence[SegDataSample]): Their samples with
            ``gt_sem_seg``.

    Returns:
        Tensor: Scalar, differentiable w.r.t. ``images``.
    """
    data = model.data_preprocessor(
        dict(inputs=list(images), data_samples=list(data_samples)), False)
    # Fresh samples with only the meta information: predict() writes its
    # outputs into them, and the caller's samples must stay untouched.
    probes = [SegDataSample(metainfo=s.metainfo) for s in data['data_samples']]
    predictions = model.predict(data['inputs'], probes)
    ignore_index = getattr(model.decode_head, 'ignore_index', 255)
    loss = 0.
    for pred, sample in zip(predictions, data['data_samples']):
        logits = pred.seg_logits.data  # (C, H, W) at the gt's size
        gt = sample.gt_sem_seg.data.to(logits.device).long()  # (1, H, W)
        if logits.shape[0] == 1:
            # Binary heads: predict() returns sigmoid probabilities.
            valid = gt != ignore_index
            loss = loss + F.binary_cross_entropy(
                logits.clamp(1e-6, 1 - 1e-6)[valid], gt[valid].float())
        else:
            loss = loss + F.cross_entropy(
                logits[None], gt, ignore_index=ignore_index)
    return loss


def check_attack(name: str, eps: float) -> None:
    """Raise a ValueError naming the fix for a bad attack name or eps.

    Args:
        name (str): Attack name, a key of :data:`ATTACKS`.
        eps (float): L_inf radius in pixel units, >= 0.
    """
    if name not in ATTACKS:
        raise ValueError(f'Unknown attack {name!r}; valid names are: '
                         f'{", ".join(ATTACKS)}.')
    if eps < 0:
        raise ValueError(f'eps must be >= 0 (pixel units 0..255), got {eps}.')


def _project(x: Tensor, clean: Tensor, eps: float) -> Tensor:
    return torch.min(torch.max(x, clean - eps), clean + eps).clamp(0., 255.)


def pgd_attack(model: torch.nn.Module,
               data: dict,
               eps: float,
               steps: int = 10,
               step_size: Optional[float] = None,
               random_start: bool = False,
               seed: int = 0) -> dict:
    """Projected gradient descent (ascent on the loss), L_inf ball.

    Args:
        model (nn.Module): mmseg segmentor; it is put in eval mode (frozen
            BN statistics, no dropout) and its parameters get no gradients.
        data (dict): A batch from the test dataloader: ``inputs`` (list of
            (C, H, W) tensors, 0..255) and ``data_samples`` with
            ``gt_sem_seg``.
        eps (float): Radius in pixel units (0..255). 0 returns the clean
            images (as float), so predictions are exactly unchanged.
        steps (int): Number of gradient steps. Defaults to 10.
        step_size (float, optional): Step in pixel units. Defaults to
            ``eps / 4``.
        random_start (bool): Start from a uniform random point of the eps
            ball (seeded per image from ``seed`` and the image's file name).
            Defaults to False.
        seed (int): Seed for the random start. Defaults to 0.

    Returns:
        dict: ``data`` with ``inputs`` replaced by the adversarial images
        (float tensors on the model's device); ``data_samples`` unchanged.
    """
    check_attack('pgd', eps)
    if steps < 1:
        raise ValueError(f'PGD needs steps >= 1, got {steps}.')
    step_size = eps / 4 if step_size is None else float(step_size)
    model.eval()
    device = next(model.parameters()).device
    clean = [img.to(device).float() for img in data['inputs']]
    samples = data['data_samples']
    adv = [img.clone() for img in clean]
    if eps > 0 and random_start:
        for i, sample in enumerate(samples):
            gen = torch.Generator().manual_seed(
                int(per_image_seed(seed, sample.metainfo.get(
                    'img_path', i)).generate_state(1)[0]))
            noise = torch.rand(adv[i].shape, generator=gen) * 2 - 1
            adv[i] = _project(adv[i] + eps * noise.to(device), clean[i], eps)
    if eps > 0:
        with torch.enable_grad():
            for _ in range(steps):
                adv = [x.detach().requires_grad_(True) for x in adv]
                loss = segmentation_loss(model, adv, samples)
                grads = torch.autograd.grad(loss, adv)
                adv = [
                    _project(x.detach() + step_size * g.sign(), c, eps)
                    for x, g, c in zip(adv, grads, clean)
                ]
    return dict(data, inputs=[x.detach() for x in adv])


def fgsm_attack(model: torch.nn.Module, data: dict, eps: float) -> dict:
    """Fast gradient sign method: one step of size ``eps``.

    Args:
        model (nn.Module): mmseg segmentor (see :func:`pgd_attack`).
        data (dict): A batch from the test dataloader.
        eps (float): Radius in pixel units (0..255).

    Returns:
        dict: ``data`` with adversarial ``inputs``.
    """
    return pgd_attack(
        model, data, eps, steps=1, step_size=eps, random_start=False)


ATTACKS: Dict[str, Callable[..., dict]] = {
    'fgsm': fgsm_attack,
    'pgd': pgd_attack,
}


def build_attack(name: str,
                 eps: float,
                 pgd_steps: int = 10,
                 pgd_step_size: Optional[float] = None,
                 random_start: bool = False,
                 seed: int = 0) -> Callable[[torch.nn.Module, dict], dict]:
    """Return ``attack(model, data) -> data`` for a named attack.

    Args:
        name (str): ``'fgsm'`` or ``'pgd'``.
        eps (float): L_inf radius in pixel units (0..255).
        pgd_steps (int): PGD steps. Defaults to 10.
        pgd_step_size (float, optional): PGD step. Defaults to ``eps / 4``.
        random_start (bool): PGD random start. Defaults to False.
        seed (int): Seed of the random start. Defaults to 0.

    Returns:
        Callable: The attack with its settings bound.
    """
    check_attack(name, eps)
    if name == 'fgsm':
        return lambda model, data: fgsm_attack(model, data, eps)
    return lambda model, data: pgd_attack(
        model, data, eps, steps=pgd_steps, step_size=pgd_step_size,
        random_start=random_start, seed=seed)


__all__: List[str] = [
    'segmentation_loss', 'check_attack', 'fgsm_attack', 'pgd_attack', 'ATTACKS',
    'build_attack'
]
