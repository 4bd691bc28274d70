"""ONNX export of a segmentor and an onnxruntime stand-in for it.

The exported graph maps the normalized image (N, 3, H, W) float32 - what the
data preprocessor produces - to the logits (N, K, H, W) at the input size, as
``model.encode_decode(inputs, metas)`` gives in whole mode. Normalization,
padding to a batch and the argmax stay outside the graph, as in mmseg.

A dynamic export is checked before it is written: the graph traced at one
size must give PyTorch's logits at another, else :class:`DynamicExportError`
names the module that kept the traced size. Modules known to do so get a
trace-friendly forward during the export (:mod:`.export_rewriters`).
"""
import contextlib
import copy
import os
import os.path as osp
import re
import uuid
import warnings
from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn
from mmengine.logging import print_log

from .export_rewriters import export_rewrites

#: Input and output names of exported graphs.
INPUT_NAME = 'inputs'
OUTPUT_NAME = 'logits'
DEFAULT_OPSET = 17
#: A dynamic graph matches PyTorch when its logits are within this fraction
#: of PyTorch's logit range and its argmax agrees on this share of pixels.
DYNAMIC_TOLERANCE = 1e-3
DYNAMIC_ARGMAX_AGREEMENT = 0.999


class DynamicExportError(RuntimeError):
    """A graph exported with dynamic axes is wrong at another input size."""


def _require(module: str):
    try:
        return __import__(module)
    except ImportError as e:
        raise ImportError(
            f'ONNX export and inference need `{module}`: pip install '
            '"tips-mmseg[deploy]" (onnx, onnxruntime).') from e


class EncodeDecode(nn.Module):
    """``segmentor.encode_decode`` in whole mode, as a one-input module.

    The meta dicts carry the input's own size, so the final bilinear resize
    follows the (dynamic) input shape of the graph.
    """

    def __init__(self, segmentor: nn.Module):
        super().__init__()
        self.segmentor = segmentor

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        size = inputs.shape[-2:]
        metas = [dict(img_shape=size, pad_shape=size, ori_shape=size)]
        return self.segmentor.encode_decode(inputs, metas)


def export_onnx(model: nn.Module,
                out: str,
                shape: Sequence[int] = (64, 64),
                batch_size: int = 1,
                dynamic: bool = True,
                opset: int = DEFAULT_OPSET,
                verbose: bool = False,
                check_dynamic: bool = True) -> str:
    """Export a segmentor (eval mode) to ONNX with torch's TorchScript
    exporter.

    Modules that :mod:`.export_rewriters` lists (e.g.
    ``nn.MultiheadAttention`` in SegFormer's MiT) are traced through their
    trace-friendly forward; the model is unchanged afterwards. The file is
    written only once the export (and its check) succeeded.

    Args:
        model (nn.Module): A built mmseg segmentor; it is put in eval mode.
        out (str): Path of the ``.onnx`` file (folders are made).
        shape (Sequence[int]): (H, W) of the example input traced. With
            ``dynamic=False`` the graph takes only this size. Defaults to
            (64, 64).
        batch_size (int): N of the example input. Defaults to 1.
        dynamic (bool): Dynamic batch, height and width. Defaults to True.
        opset (int): ONNX opset. Defaults to 17.
        verbose (bool): Keep the exporter's warnings. Defaults to False.
        check_dynamic (bool): With ``dynamic``, run the graph in
            onnxruntime at another size and batch
            (:func:`check_dynamic_graph`) and refuse it with
            :class:`DynamicExportError` if it fails there or disagrees with
            PyTorch. Defaults to True.

    Returns:
        str: ``out``.

    Raises:
        DynamicExportError: A dynamic graph does not hold at another size;
            the message names the module that kept the traced size.
    """
    if len(shape) != 2 or min(shape) < 1:
        raise ValueError(f'shape must be (H, W) with H, W >= 1, got {shape}.')
    model.eval()
    wrapper = EncodeDecode(model).eval()
    device = next(model.parameters()).device
    channels = input_channels(model)
    example = torch.randn(batch_size, channels, *shape, device=device)
    dynamic_axes = None
    if dynamic:
        dynamic_axes = {
            INPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'},
            OUTPUT_NAME: {0: 'batch', 2: 'height', 3: 'width'}
        }
    folder = osp.dirname(osp.abspath(out))
    os.makedirs(folder, exist_ok=True)
    # Written next to ``out`` and renamed, so a refused export leaves no
    # file (and an older ``out`` stays as it was).
    tmp = osp.join(folder, f'.{osp.basename(out)}.{uuid.uuid4().hex}.tmp')
    try:
        with _record_trace_notes(model, verbose) as notes, \
                torch.no_grad(), export_rewrites(model):
            torch.onnx.export(
                wrapper, (example, ),
                tmp,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False)
        if dynamic and check_dynamic:
            try:
                _require('onnxruntime')
            except ImportError:
                warnings.warn(
                    f'{out}: the dynamic graph was not run at a second size '
                    '(onnxruntime is not installed), so it is not known to '
                    'hold at sizes other than '
                    f'{shape[0]}x{shape[1]}: pip install onnxruntime.')
            else:
                stats = check_dynamic_graph(model, tmp, shape, batch_size,
                                            notes)
                n, _, h, w = stats['shape']
                print_log(
                    f'{out}: the dynamic graph traced at {batch_size}x'
                    f'{shape[0]}x{shape[1]} matches PyTorch at {n}x{h}x{w} '
                    f'(max |diff| {stats["rel"]:.3g} of the logit range, '
                    f'argmax agrees on {100 * stats["argmax_agreement"]:.3f}'
                    '% of pixels)', logger='current')
        os.replace(tmp, out)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return out


class TraceNote(NamedTuple):
    """A place where the trace turned a tensor into a Python value (which
    the graph then holds as a constant)."""
    module: str  #: name of the module running, in the segmentor
    kind: str  #: its class
    where: str  #: file:line
    message: str


@contextlib.contextmanager
def _record_trace_notes(model: nn.Module, verbose: bool):
    """Collect the tracer's warnings with the module that raised each; the
    other warnings are shown only if ``verbose``."""
    notes: List[TraceNote] = []
    running = [('', model)]
    handles = []

    def leave(module, args, output):
        running.pop()  # returns None: the output stays as it is

    for name, module in model.named_modules():
        handles.append(module.register_forward_pre_hook(
            lambda m, args, name=name: running.append((name, m))))
        handles.append(module.register_forward_hook(leave, always_call=True))

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, torch.jit.TracerWarning):
            name, module = running[-1]
            notes.append(TraceNote(name, type(module).__name__,
                                   f'{filename}:{lineno}',
                                   str(message).split('.')[0]))
        if verbose:
            shown(message, category, filename, lineno, file, line)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter('always')
            shown, warnings.showwarning = warnings.showwarning, show
            yield notes
    finally:
        for handle in handles:
            handle.remove()


def _describe_notes(notes: Sequence[TraceNote], limit: int = 6) -> str:
    """The distinct trace notes, Python numbers before Python booleans
    (most booleans are asserts on sizes, harmless)."""
    seen = {}
    for note in notes:
        seen.setdefault((note.module, note.where), note)
    ordered = sorted(seen.values(), key=lambda n: 'boolean' in n.message)
    lines = [f'  {n.module or "(segmentor)"} ({n.kind}) at {n.where}: '
             f'{n.message}' for n in ordered[:limit]]
    if len(ordered) > limit:
        lines.append(f'  ... and {len(ordered) - limit} more')
    return '\n'.join(lines)


#: onnxruntime names the failing node in its error message.
_ORT_NODE = re.compile(r"node\. Name:'([^']+)'")


def _module_of_node(model: nn.Module,
                    node: str) -> Optional[Tuple[str, nn.Module]]:
    """The innermost module of ``model`` whose scope holds the ONNX node
    ``node`` (e.g. '/backbone/layers.0.1.0/attn/attn/Reshape_4'), if any.

    Each part of the scope ends the qualified name of a module inside the
    previous part's (the exporter shortens them in more than one way), so
    the nearest such module is followed part by part.
    """
    parts = [p for p in node.split('/') if p][:-1]
    if parts and parts[0] == 'segmentor':  # the EncodeDecode wrapper's
        parts = parts[1:]
    names = dict(model.named_modules())
    found = None
    current = ''
    for part in parts:
        inside = [n for n in names if n and (
            not current or n.startswith(current + '.'))]
        matches = [n for n in inside if n == part or n.endswith('.' + part)]
        if not matches:
            break
        current = min(matches, key=len)
        found = current
    return (found, names[found]) if found else None


def _module_label(name: str, module: nn.Module) -> str:
    kind = type(module)
    return f"module '{name}' ({kind.__module__}.{kind.__qualname__})"


def check_dynamic_graph(model: nn.Module,
                        onnx_file: str,
                        shape: Sequence[int],
                        batch_size: int = 1,
                        notes: Sequence[TraceNote] = ()) -> dict:
    """Refuse a dynamic graph that does not hold at another input size.

    Runs ``onnx_file`` in onnxruntime on a random input of another batch
    size and another, odd, height and width ((N + 1, C, H + 17, W + 33) for
    a graph traced at (N, C, H, W)) and compares it with the PyTorch model.

    Args:
        model (nn.Module): The segmentor exported (eval mode).
        onnx_file (str): Its dynamic graph.
        shape (Sequence[int]): (H, W) traced.
        batch_size (int): N traced. Defaults to 1.
        notes (Sequence[TraceNote]): What the trace warned about, to name
            the culprit when the graph runs but disagrees. Defaults to ().

    Returns:
        dict: As :func:`compare_with_torch`, at the second size.

    Raises:
        DynamicExportError: onnxruntime fails at the second size (the
            message names the module of the failing node) or its logits
            differ from PyTorch's by more than :data:`DYNAMIC_TOLERANCE` of
            their range or its argmax agrees on fewer than
            :data:`DYNAMIC_ARGMAX_AGREEMENT` of the pixels.
    """
    ort = _require('onnxruntime')
    probe = (shape[0] + 17, shape[1] + 33)
    traced = f'{batch_size}x{shape[0]}x{shape[1]}'
    there = f'{batch_size + 1}x{probe[0]}x{probe[1]}'
    fix = ('Export a static graph at the size you will run instead '
           '(tools/export_onnx.py without --dynamic, or '
           'export_onnx(..., dynamic=False)), or give that module a '
           'trace-friendly forward in tips_mmseg/apis/export_rewriters.py '
           '(REWRITES).')
    inputs = torch.randn(batch_size + 1, input_channels(model), *probe,
                         generator=torch.Generator().manual_seed(0))
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            expected = EncodeDecode(model)(inputs.to(device)).cpu()
    except Exception as e:
        raise DynamicExportError(
            f'Cannot check the dynamic graph {onnx_file!r}: PyTorch itself '
            f'fails on an input of {there} (N x H x W): {e}. Export a '
            'static graph, or pass check_dynamic=False if the model does '
            'not take such sizes.') from e
    options = ort.SessionOptions()
    options.log_severity_level = 4  # its failure is reported below
    session = ort.InferenceSession(onnx_file, options,
                                   providers=['CPUExecutionProvider'])
    try:
        got = session.run(None, {INPUT_NAME: inputs.numpy()})[0]
    except Exception as e:
        node = _ORT_NODE.search(str(e))
        found = node and _module_of_node(model, node.group(1))
        where = (f" in node '{node.group(1)}' of "
                 f'{_module_label(*found)}' if found else
                 f" in node '{node.group(1)}'" if node else '')
        raise DynamicExportError(
            f'--dynamic export refused: the graph traced at {traced} '
            f'(N x H x W) fails in onnxruntime at {there}{where}; that '
            'module keeps a size of the traced input as a constant. '
            f'{fix}\nonnxruntime said: {str(e).strip()[:500]}') from e
    got = torch.from_numpy(np.ascontiguousarray(got))
    if got.shape != expected.shape:
        raise DynamicExportError(
            f'--dynamic export refused: at {there} the graph traced at '
            f'{traced} gives logits of shape {tuple(got.shape)}, PyTorch '
            f'{tuple(expected.shape)}. {fix}')
    stats = _agreement(expected, got)
    if (stats['rel'] > DYNAMIC_TOLERANCE
            or stats['argmax_agreement'] < DYNAMIC_ARGMAX_AGREEMENT):
        culprits = _describe_notes(notes)
        raise DynamicExportError(
            f'--dynamic export refused: at {there} the graph traced at '
            f'{traced} runs but disagrees with PyTorch (max |diff| '
            f'{stats["max_abs"]:.3g}, {stats["rel"]:.3g} of the logit '
            f'range; argmax agrees on {100 * stats["argmax_agreement"]:.2f}'
            '% of pixels): a module turned a size of the traced input into '
            'a constant. ' + (
                'The trace turned tensors into Python values in:\n'
                f'{culprits}\n' if culprits else '') + fix)
    return stats


def input_channels(model: nn.Module) -> int:
    """Input channels of the segmentor (3 unless its first conv says)."""
    for m in model.backbone.modules():
        if isinstance(m, nn.Conv2d):
            return m.in_channels
    return 3


class ONNXSegmentor:
    """An exported segmentor run by onnxruntime, with the parts of the
    PyTorch segmentor that evaluators use.

    It has the data preprocessor, ``num_classes``, ``align_corners``,
    ``decode_head`` (for the threshold), ``test_cfg`` and ``inference`` /
    ``encode_decode`` of the original, so code written for an mmseg
    segmentor (e.g. :func:`evaluate_shift_consistency`) runs the deployed
    graph instead. Slide mode reuses mmseg's own ``slide_inference`` over
    this object's ``encode_decode``.

    Args:
        onnx_file (str): The exported model.
        segmentor (nn.Module): The PyTorch segmentor of the same config
            (for the preprocessor and settings; its weights are not used).
        providers (Sequence[str], optional): onnxruntime providers.
            Defaults to CPU.
    """

    def __init__(self, onnx_file: str, segmentor: nn.Module,
                 providers: Optional[Sequence[str]] = None):
        ort = _require('onnxruntime')
        if not osp.isfile(onnx_file):
            raise FileNotFoundError(
                f'ONNX file {onnx_file!r} not found; export one with '
                'tools/export_onnx.py CONFIG [CHECKPOINT] --out FILE.onnx.')
        self.onnx_file = onnx_file
        self.session = ort.InferenceSession(
            onnx_file, providers=list(providers or ['CPUExecutionProvider']))
        self.input_name = self.session.get_inputs()[0].name
        self.data_preprocessor = segmentor.data_preprocessor
        self.num_classes = segmentor.num_classes
        self.out_channels = getattr(segmentor, 'out_channels',
                                    segmentor.num_classes)
        self.align_corners = getattr(segmentor, 'align_corners', False)
        self.decode_head = segmentor.decode_head
        self.test_cfg = copy.deepcopy(segmentor.test_cfg)
        self.training = False

    def eval(self):
        return self

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.encode_decode(inputs, None)

    def encode_decode(self, inputs: torch.Tensor,
                      batch_img_metas: Optional[List[dict]] = None
                      ) -> torch.Tensor:
        """Logits (N, K, H, W) of the graph for ``inputs`` (N, 3, H, W)."""
        array = inputs.detach().cpu().float().numpy()
        logits = self.session.run(None, {self.input_name: array})[0]
        return torch.from_numpy(np.ascontiguousarray(logits)).to(
            inputs.device)

    def inference(self, inputs: torch.Tensor,
                  batch_img_metas: List[dict]) -> torch.Tensor:
        """As ``EncoderDecoder.inference``: whole or slide mode."""
        mode = (self.test_cfg or {}).get('mode', 'whole')
        if mode == 'slide':
            from mmseg.models.segmentors import EncoderDecoder
            return EncoderDecoder.slide_inference(self, inputs,
                                                  batch_img_metas)
        if mode != 'whole':
            raise ValueError(f"test_cfg.mode must be 'whole' or 'slide', got "
                             f'{mode!r}.')
        return self.encode_decode(inputs, batch_img_metas)


def compare_with_torch(model: nn.Module, onnx_file: str,
                       inputs: torch.Tensor) -> dict:
    """Run PyTorch and onnxruntime on ``inputs``; how far apart they are.

    Returns:
        dict: ``max_abs`` (largest absolute logit difference), ``rel``
        (that divided by PyTorch's logit range), ``argmax_agreement``
        (fraction of pixels with the same class).
    """
    model.eval()
    with torch.no_grad():
        expected = EncodeDecode(model)(inputs)
    got = ONNXSegmentor(onnx_file, model).encode_decode(inputs)
    if got.shape != expected.shape:
        raise RuntimeError(f'onnxruntime gave logits of shape '
                           f'{tuple(got.shape)}, PyTorch '
                           f'{tuple(expected.shape)}.')
    return _agreement(expected, got)


def _agreement(expected: torch.Tensor, got: torch.Tensor) -> dict:
    """How far logits ``got`` are from ``expected`` (same shape)."""
    expected, got = expected.float().cpu(), got.float().cpu()
    diff = (got - expected).abs().max().item()
    span = (expected.max() - expected.min()).item()
    agree = (got.argmax(1) == expected.argmax(1)).float().mean().item()
    return dict(max_abs=diff, rel=diff / max(span, 1e-12),
                argmax_agreement=agree, shape=tuple(expected.shape))
