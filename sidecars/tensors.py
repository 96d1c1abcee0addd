"""The ``torch`` and ``onnx`` runtimes: tensor models run by INFER.

A ``torch`` artifact is a TorchScript file (``torch.jit.save``) or the state dict of an
MLP (``torch.save(model.state_dict())``); an ``onnx`` one is an ONNX file, run by
onnxruntime with one thread. Both take the INFER input's fixed-point values as a float32
tensor and give back the quantised output (:func:`_tensor_executor`), so they share this
module; each library is imported only when its model is loaded, so an ONNX sidecar never
pays for torch.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Callable
from typing import TYPE_CHECKING

from sidecars.abi import INFER_ADDRESS, AbiError, decode_infer_input, encode_infer_output, for_model
from sidecars.model import Failed, Model, ModelLoadError, Refused, deterministic, first_line

if TYPE_CHECKING:
    import numpy as np


def _tensor_executor(model_id: bytes, forward: Callable[[np.ndarray], np.ndarray]):
    from sidecars.fixedpoint import InputOutOfRange, NonFiniteOutput, quantize, to_float32

    def execute(data: bytes) -> bytes:
        try:
            request = for_model(decode_infer_input(data), model_id)
            inputs = to_float32(request.values, request.decimals).reshape(request.shape)
        except (AbiError, InputOutOfRange) as exc:
            raise Refused(f"bad INFER input: {exc}") from None
        try:
            outputs = forward(inputs)
            return encode_infer_output(quantize(outputs, request.decimals), list(outputs.shape))
        except (NonFiniteOutput, AbiError) as exc:
            raise Failed(str(exc)) from None
        except Exception as exc:
            raise Failed(f"model error: {type(exc).__name__}: {first_line(exc)}") from None

    return execute


def load_torch(model_id: bytes, data: bytes) -> Model:
    import torch

    torch.set_num_threads(1)
    deterministic(torch)
    run_module = _torchscript(torch, data) if _is_torchscript(data) else _mlp(torch, data)

    def forward(inputs: np.ndarray) -> np.ndarray:
        outputs = run_module(torch.from_numpy(inputs))
        if not isinstance(outputs, torch.Tensor):
            raise TypeError(f"model returned {type(outputs).__name__}, not one tensor")
        return outputs.numpy()

    return Model(
        "torch",
        model_id,
        INFER_ADDRESS,
        {"torch": torch.__version__},
        _tensor_executor(model_id, forward),
    )


def _is_torchscript(data: bytes) -> bool:
    """``torch.jit.save`` archives hold the model's code; ``torch.save`` ones only data."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(name.endswith("/constants.pkl") for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


def _torchscript(torch, data: bytes) -> Callable:  # noqa: ANN001
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.export
            warnings.simplefilter("ignore", DeprecationWarning)
            module = torch.jit.load(io.BytesIO(data), map_location="cpu").eval()
    except Exception as exc:
        raise ModelLoadError(f"not a TorchScript model: {first_line(exc)}") from None
    # Served weights never need gradients: with them frozen no call records autograd
    # history, so calls skip the per-call inference_mode guard, and go straight to the
    # scripted forward past nn.Module's hook handling (a loaded module has no hooks).
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module.forward


def _mlp(torch, data: bytes) -> Callable:  # noqa: ANN001
    """The forward pass of the one architecture a state dict may have: an MLP, Linear
    layers in the dict's order (``<name>.weight``, then ``<name>.bias``) with ReLU
    between them, as ``torch.save(nn.Sequential(Linear, ReLU, ..., Linear).state_dict())``
    writes it. Loaded with ``weights_only``, so the file can hold tensors and nothing that
    runs; run eagerly, which for layers this small is faster than TorchScript."""
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ModelLoadError(
            f"neither a TorchScript model nor a state dict: {first_line(exc)}"
        ) from None
    if not isinstance(state, dict) or not state or len(state) % 2:
        raise ModelLoadError("a torch state dict must hold a weight and a bias per layer")
    names = list(state)
    layers = []
    for weight_name, bias_name in zip(names[::2], names[1::2], strict=True):
        layer = weight_name.removesuffix(".weight")
        weight, bias = state[weight_name], state[bias_name]
        if not (
            weight_name.endswith(".weight")
            and bias_name == layer + ".bias"
            and isinstance(weight, torch.Tensor)
            and isinstance(bias, torch.Tensor)
            and weight.dtype == bias.dtype == torch.float32
            and weight.layout == bias.layout == torch.strided
            and weight.dim() == 2
            and tuple(bias.shape) == (weight.shape[0],)
        ):
            raise ModelLoadError(
                f"state dict entries {weight_name!r}, {bias_name!r} are not the dense float32 "
                "weight and bias of a Linear layer (the torch runtime knows MLPs only)"
            )
        if layers and layers[-1][0].shape[0] != weight.shape[1]:
            raise ModelLoadError(
                f"layer {layer!r} takes {weight.shape[1]} inputs, but the layer before it "
                f"gives {layers[-1][0].shape[0]}"
            )
        # parameters saved as such keep requires_grad, and their outputs then could not
        # become numpy arrays: serve plain tensors
        layers.append((weight.detach().contiguous(), bias.detach().contiguous()))
    linear, relu = torch.nn.functional.linear, torch.relu
    hidden, (last_weight, last_bias) = layers[:-1], layers[-1]

    def forward(x):  # noqa: ANN001, ANN202
        for weight, bias in hidden:
            x = relu(linear(x, weight, bias))
        return linear(x, last_weight, last_bias)

    return forward


def load_onnx(model_id: bytes, data: bytes) -> Model:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    try:
        session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise ModelLoadError(f"not an ONNX model: {first_line(exc)}") from None
    inputs_meta = session.get_inputs()
    if len(inputs_meta) != 1:
        raise ModelLoadError(f"ONNX model must take one input, it takes {len(inputs_meta)}")
    input_name = inputs_meta[0].name

    def forward(inputs: np.ndarray) -> np.ndarray:
        return session.run(None, {input_name: inputs})[0]

    return Model(
        "onnx",
        model_id,
        INFER_ADDRESS,
        {"onnxruntime": onnxruntime.__version__},
        _tensor_executor(model_id, forward),
    )
