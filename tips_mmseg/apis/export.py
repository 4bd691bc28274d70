"""ONNX export of a segmentor and an onnxruntime stand-in for it.

The exported graph maps the normalized image (N, 3, H, W) float32 - what the
data preprocessor produces - to the logits (N, K, H, W) at the input size, as
``model.encode_decode(inputs, metas)`` gives in whole mode. Normalization,
padding to a batch and the argmax stay outside the graph, as in mmseg.
"""
import copy
import os
import os.path as osp
import warnings
from typing import List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn

#: Input and output names of exported graphs.
INPUT_NAME = 'inputs'
OUTPUT_NAME = 'logits'
DEFAULT_OPSET = 17


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
                verbose: bool = False) -> str:
    """Export a segmentor (eval mode) to ONNX with torch's TorchScript
    exporter.

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

    Returns:
        str: ``out``.
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
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    with warnings.catch_warnings():
        if not verbose:
            warnings.simplefilter('ignore')
        with torch.no_grad():
            torch.onnx.export(
                wrapper, (example, ),
                out,
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_axes=dynamic_axes,
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False)
    return out


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
    diff = (got - expected).abs().max().item()
    span = (expected.max() - expected.min()).item()
    agree = (got.argmax(1) == expected.argmax(1)).float().mean().item()
    return dict(max_abs=diff, rel=diff / max(span, 1e-12),
                argmax_agreement=agree, shape=tuple(expected.shape))
