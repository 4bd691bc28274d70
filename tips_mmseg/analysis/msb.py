"""Maximum-sampling bias (MSB) of downsampling layers, measured with hooks.

Definitions (``docs/method.md``), per downsampling layer, for output
element ``y`` and the input window ``w`` its output location covers:

* ``msb_pixel``: fraction of output elements equal (relative tolerance
  :data:`REL_TOL`) to ``max(w)``. Max-pool: 1; averaging: ~0. Only windows
  with ``max(w) > min(w)`` (beyond the tolerance) count, as for
  ``msb_soft``: in a flat window every output "equals the max", and after a
  ReLU many windows are all zero (46% in a random conv-ReLU net), which
  would lift an average pool's msb_pixel from 0 to ~0.46. A literal
  reading counts all output elements; this is a deliberate refinement so
  that "averaging -> ~0" holds on real features. ``flat_fraction`` reports
  the share of flat windows.
* ``msb_soft``: mean of ``(y - min(w)) / (max(w) - min(w))`` over windows
  with ``max(w) > min(w)``, clipped to [0, 1] (a BlurPool output can leave
  its 2x2 window's range). 1: always the max, 0: always the min, ~0.5:
  unbiased.
* ``msb_phase``: mean weight the layer gives to the polyphase component of
  largest l2 norm; None for layers without a phase (pools, BlurPool).
  APS: 1; uniform mixing: 0.25. Components whose norm is within the
  tolerance of the largest share it (their weights add up); entries where
  all four norms tie carry no information and are skipped.

Windows, per kind of layer:

* APS / LPS / TIPS (:class:`PolyphaseDownsample`, stride s): the s x s
  windows ``X[n, c, s*i:s*i+s, s*j:s*j+s]`` of the input after the layer's own
  low-pass (if any) and padding of odd sizes (``polyphase_input``). Norms
  for ``msb_phase`` are per sample over (C, h, w) when the layer's weights
  are per sample (N, 1, s*s: APS, LPS), per (sample, channel) over (h, w)
  when they are per channel (N, C, s*s: TIPS) - the granularity at which the
  layer chooses.
* Strided conv (stride s): measured on the conv's stride-1 response ``R``
  (same weights, padding and dilation, stride 1), which holds the strided
  output at ``R[s*i, s*j]``; windows ``R[s*i:s*i+s, s*j:s*j+s]`` (partial at
  the bottom/right where ``R`` is not a multiple of s). For a square
  stride the conv always keeps component (0, 0) of ``R``, so ``msb_phase``
  is the fraction of samples in which that component has the largest norm
  (per-sample norms of ``R``): ~1/s^2 when the phase is unrelated to the
  content. Defining it for
  the vanilla baseline is what makes it comparable with APS/LPS/TIPS.
* Plain stride-2 subsampling modules (``subsample_types``, output
  ``X[..., ::2, ::2]``): as a strided conv whose response is its input.
* BlurPool (stride s): the s x s windows ``X[n, c, s*i:s*i+s, s*j:s*j+s]``
  of its input (partial at the bottom/right for odd sizes, where BlurPool
  itself pads
  symmetrically), ``y`` its output; no ``msb_phase``.
* Max / average pools (stride > 1): their pooling window (kernel, stride,
  padding, dilation, ceil_mode); padding never counts as a window value
  (-inf for the max, as max-pool pads).

Aggregation: a layer's values are over all its (informative) output
elements of all recorded forwards; the model's mean is over layers,
weighted by each layer's number of output elements (layers where a value
is None are left out).
"""
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..models.layers import (BlurPool, PolyphaseDownsample,
                             polyphase_split)
from ..models.layers.polyphase import polyphase_split

#: Relative tolerance for "equal to the window's maximum".
REL_TOL = 1e-6

#: The three measurements, in the order they are reported.
MSB_KEYS = ('msb_pixel', 'msb_soft', 'msb_phase')

IntPair = Union[int, Tuple[int, int]]


def _pair(value: IntPair) -> Tuple[int, int]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def downsample_kind(module: nn.Module,
                    subsample_types: Sequence[type] = ()) -> Optional[str]:
    """Which kind of downsampling operator ``module`` is, if any.

    Args:
        module (nn.Module): Any module.
        subsample_types (Sequence[type]): Module classes whose output is
            their input subsampled as ``X[..., ::2, ::2]``. Defaults to ().

    Returns:
        str | None: 'polyphase', 'blurpool', 'strided_conv', 'subsample',
        'max_pool', 'avg_pool', or None for anything that does not reduce
        the resolution by a stride.
    """
    if isinstance(module, PolyphaseDownsample):
        return 'polyphase'
    if isinstance(module, BlurPool) and module.stride > 1:
        # (stride 1: the low-pass inside APS/LPS, not a downsampler)
        return 'blurpool'
    if subsample_types and isinstance(module, tuple(subsample_types)):
        return 'subsample'
    if isinstance(module, nn.Conv2d) and max(_pair(module.stride)) > 1:
        return 'strided_conv'
    if isinstance(module, nn.MaxPool2d) and max(_pair(module.stride)) > 1:
        return 'max_pool'
    if isinstance(module, nn.AvgPool2d) and max(_pair(module.stride)) > 1:
        return 'avg_pool'
    return None


def window_extrema(x: torch.Tensor,
                   kernel_size: IntPair,
                   stride: IntPair,
                   padding: IntPair = 0,
                   dilation: IntPair = 1,
                   ceil_mode: bool = False
                   ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Maximum and minimum of every pooling window of ``x``.

    Max-pooling ``x`` and ``-x`` with the window's geometry gives both;
    padding never wins (max-pool pads with -inf).

    Args:
        x (Tensor): (N, C, H, W) map.
        kernel_size (int | tuple[int, int]): Window size.
        stride (int | tuple[int, int]): Window stride.
        padding (int | tuple[int, int]): Implicit padding. Defaults to 0.
        dilation (int | tuple[int, int]): Window dilation. Defaults to 1.
        ceil_mode (bool): Keep partial windows at the bottom/right.
            Defaults to False.

    Returns:
        tuple[Tensor, Tensor]: (max, min), each (N, C, H_out, W_out), float32.
    """
    x = x.float()
    pool = dict(kernel_size=kernel_size, stride=stride, padding=padding,
                dilation=dilation, ceil_mode=ceil_mode)
    return F.max_pool2d(x, **pool), -F.max_pool2d(-x, **pool)


def largest_component_weight(components: torch.Tensor,
                             weights: torch.Tensor) -> torch.Tensor:
    """Weight given to the component(s) of largest l2 norm.

    Args:
        components (Tensor): (N, C, s*s, h, w) polyphase components.
        weights (Tensor): (N, 1, s*s) per-sample or (N, C, s*s) per-channel
            component weights. Per-sample weights are compared with norms
            over (C, h, w), per-channel weights with norms over (h, w).

    Returns:
        Tensor: 1-D, one value per informative (sample[, channel]) entry:
        the summed weight of the components whose norm is within
        :data:`REL_TOL` of the largest; entries where all norms tie are
        left out.
    """
    energy = components.float().pow(2).sum(dim=(3, 4))  # (N, C, s*s)
    if weights.shape[1] == 1:
        energy = energy.sum(dim=1, keepdim=True)  # (N, 1, s*s)
    norms = energy.sqrt()
    largest = norms.amax(dim=-1, keepdim=True)
    is_largest = norms >= largest * (1 - REL_TOL)
    informative = ~is_largest.all(dim=-1)
    weight = (weights.float().expand_as(norms) * is_largest).sum(dim=-1)
    return weight[informative]


def stride_one_response(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """Response of ``conv``'s weights to ``x`` at stride 1.

    Same weights, bias, padding (mode included), dilation and groups; the
    strided output is this response at ``[s*i, s*j]``.
    """
    padding = conv.padding
    if conv.padding_mode != 'zeros':
        x = F.pad(x, conv._reversed_padding_repeated_twice,
                  mode=conv.padding_mode)
        padding = 0
    elif padding == 'valid':
        padding = 0
    return F.conv2d(x, conv.weight, conv.bias, 1, padding, conv.dilation,
                    conv.groups)


@dataclass
class LayerMSB:
    """Running sums of one layer's MSB over the forwards seen so far.

    Args:
        name (str): Module path in the model.
        type (str): Module class name.
        kind (str): Kind of operator, see :func:`downsample_kind`.
    """
    name: str
    type: str
    kind: str
    output_elements: int = 0
    max_hits: int = 0
    flat_windows: int = 0
    soft_sum: float = 0.
    soft_count: int = 0
    phase_sum: float = 0.
    phase_count: int = 0

    def add_windows(self, y: torch.Tensor, window_max: torch.Tensor,
                    window_min: torch.Tensor):
        """Count output elements ``y`` against their windows' extrema."""
        if y.shape != window_max.shape:
            raise RuntimeError(
                f'MSB of {self.name} ({self.type}): output of shape '
                f'{tuple(y.shape)} does not match its '
                f'{tuple(window_max.shape)} windows; the layer does not '
                f'downsample as its kind ({self.kind}) says.')
        y = y.float()
        at_max = torch.isclose(y, window_max, rtol=REL_TOL, atol=0)
        flat = torch.isclose(window_min, window_max, rtol=REL_TOL, atol=0)
        spread = (window_max - window_min)[~flat]
        soft = ((y[~flat] - window_min[~flat]) / spread).clamp(0, 1)
        self.output_elements += y.numel()
        self.flat_windows += int(flat.sum())
        # Flat windows say nothing about a bias (any output is their max).
        self.max_hits += int((at_max & ~flat).sum())
        self.soft_sum += float(soft.double().sum())
        self.soft_count += soft.numel()

    def add_phase(self, weights_at_largest: torch.Tensor):
        """Add values from :func:`largest_component_weight`."""
        self.phase_sum += float(weights_at_largest.double().sum())
        self.phase_count += weights_at_largest.numel()

    def result(self) -> dict:
        """The layer's entry: name, type and the three MSBs (None where a
        measurement does not apply or saw no informative window), plus
        output_elements and flat_fraction (share of windows with
        max == min)."""

        def ratio(num, den):
            return num / den if den else None

        return dict(
            name=self.name,
            type=self.type,
            msb_pixel=ratio(self.max_hits, self.soft_count),
            msb_soft=ratio(self.soft_sum, self.soft_count),
            msb_phase=ratio(self.phase_sum, self.phase_count),
            output_elements=self.output_elements,
            flat_fraction=ratio(self.flat_windows, self.output_elements))


def mean_msb(layers: List[dict]) -> dict:
    """Mean of each MSB over layers, weighted by output elements.

    Args:
        layers (list[dict]): Entries of :meth:`LayerMSB.result`.

    Returns:
        dict: ``{key: mean or None}`` for every key in :data:`MSB_KEYS`.
    """
    mean = {}
    for key in MSB_KEYS:
        pairs = [(layer[key], layer['output_elements']) for layer in layers
                 if layer[key] is not None and layer['output_elements']]
        total = sum(weight for _, weight in pairs)
        mean[key] = (sum(value * weight for value, weight in pairs) / total
                     if total else None)
    return mean


class MSBRecorder:
    """Measure the MSB of every downsampling operator of a model.

    A context manager: inside ``with``, forward hooks on every strided conv,
    max/avg pool with stride > 1, BlurPool, APS, LPS and TIPS (and modules of
    ``subsample_types``) accumulate :class:`LayerMSB` sums; leaving removes
    the hooks. Measure in eval mode (LPS samples softly in training).

    Example:
        >>> with MSBRecorder(model) as recorder, torch.no_grad():
        ...     model(images)
        >>> recorder.summary()['mean']['msb_pixel']

    Args:
        model (nn.Module): The model to measure.
        subsample_types (Sequence[type]): Extra module classes that subsample
            by 2 (output ``X[..., ::2, ::2]``). Defaults to ().

    Raises:
        ValueError: ``model`` contains no downsampling operator.
    """

    def __init__(self, model: nn.Module, subsample_types: Sequence[type] = ()):
        self.layers: Dict[str, LayerMSB] = OrderedDict()
        self._modules: Dict[str, nn.Module] = OrderedDict()
        for name, module in model.named_modules():
            kind = downsample_kind(module, subsample_types)
            if kind is not None:
                self.layers[name] = LayerMSB(name, type(module).__name__, kind)
                self._modules[name] = module
        if not self.layers:
            raise ValueError(
                f'{type(model).__name__} contains no downsampling operator: '
                'MSB measures strided convs (stride > 1), max/avg pools '
                '(stride > 1), BlurPool, APS, LPS and TIPS, and found none. '
                'Pass `subsample_types` for custom subsampling modules.')
        self._handles = []

    def __enter__(self) -> 'MSBRecorder':
        if self._handles:
            raise RuntimeError('MSBRecorder is already recording.')
        for name, module in self._modules.items():
            self._handles.append(
                module.register_forward_hook(self._make_hook(name)))
        return self

    def __exit__(self, *exc_info):
        for handle in self._handles:
            handle.remove()
        self._handles = []

    def reset(self):
        """Forget everything recorded so far."""
        for name, layer in self.layers.items():
            self.layers[name] = LayerMSB(layer.name, layer.type, layer.kind)

    def results(self) -> List[dict]:
        """One :meth:`LayerMSB.result` entry per layer, in module order."""
        return [layer.result() for layer in self.layers.values()]

    def summary(self) -> dict:
        """``{'layers': results(), 'mean': mean_msb(results())}``."""
        layers = self.results()
        return dict(layers=layers, mean=mean_msb(layers))

    def _make_hook(self, name: str):
        stats = self.layers[name]

        def hook(module, inputs, output):
            if isinstance(output, (tuple, list)):  # max-pool return_indices
                output = output[0]
            with torch.no_grad():
                measure_layer(stats, module, inputs[0], output)

        return hook


def measure_layer(stats: LayerMSB, module: nn.Module, x: torch.Tensor,
                  y: torch.Tensor):
    """Add one forward of ``module`` (input ``x``, output ``y``) to ``stats``.

    See the module docstring for the window of each kind.
    """
    kind = stats.kind
    if kind == 'polyphase':
        components = polyphase_split(module.polyphase_input(x.float()),
                                     module.stride)
        stats.add_windows(y, components.amax(dim=2), components.amin(dim=2))
        if module.last_weights is not None:
            stats.add_phase(
                largest_component_weight(components, module.last_weights))
    elif kind in ('strided_conv', 'subsample'):
        response = (stride_one_response(module, x) if kind == 'strided_conv'
                    else x)
        stride = _pair(module.stride) if kind == 'strided_conv' else (2, 2)
        _measure_fixed_phase(stats, response.float(), stride, y.shape)
    elif kind == 'blurpool':
        stats.add_windows(y, *window_extrema(x, module.stride, module.stride,
                                             ceil_mode=True))
    elif kind == 'max_pool':
        stats.add_windows(
            y, *window_extrema(x, module.kernel_size, module.stride,
                               module.padding, module.dilation,
                               module.ceil_mode))
    elif kind == 'avg_pool':
        stats.add_windows(
            y, *window_extrema(x, module.kernel_size, module.stride,
                               module.padding, 1, module.ceil_mode))
    else:
        raise ValueError(f'Unknown downsampling kind {kind!r}.')


def _measure_fixed_phase(stats: LayerMSB, response: torch.Tensor,
                         stride: Tuple[int, int], output_shape: torch.Size):
    """A layer that keeps ``response[..., ::s, ::s]``: component (0, 0)."""
    kept = response[..., ::stride[0], ::stride[1]]
    if kept.shape != output_shape:
        raise RuntimeError(
            f'MSB of {stats.name} ({stats.type}): its output has shape '
            f'{tuple(output_shape)}, but its stride-1 response subsampled by '
            f'{stride} has {tuple(kept.shape)}.')
    stats.add_windows(
        kept, *window_extrema(response, stride, stride, ceil_mode=True))
    if stride[0] == stride[1]:
        # Zeros at the bottom/right (up to a multiple of s) leave norms
        # unchanged.
        s = stride[0]
        h, w = response.shape[-2:]
        components = polyphase_split(
            F.pad(response, (0, -w % s, 0, -h % s)), s)
        keeps_first = torch.zeros(response.shape[0], 1, s * s,
                                  device=response.device)
        keeps_first[..., 0] = 1
        stats.add_phase(largest_component_weight(components, keeps_first))
