"""The ``llm`` runtime: a local Hugging Face ``transformers`` causal LM, run for LLM jobs.

A model directory holds the config, the weights and a tokenizer with a chat template;
its id is keccak256 of the directory's canonical archive
(:func:`sidecars.runtimes.directory_model_id`). :func:`load_llm` checks the directory at
start and loads the weights on the first job, so a sidecar whose LLM no one calls never
imports ``transformers``. An LLM behind an OpenAI-compatible server is
:mod:`sidecars.upstream` instead.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

from sidecars.abi import LLM_ADDRESS, AbiError, decode_llm_input, encode_llm_output, for_model
from sidecars.model import (
    Failed,
    Model,
    ModelLoadError,
    Refused,
    RuntimeUnavailable,
    deterministic,
    first_line,
)

# the name its model_loading events have had since the runtimes shared one module
log = logging.getLogger("sidecars.runtimes")


def load_llm(model_id: bytes, path: Path) -> Model:
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
