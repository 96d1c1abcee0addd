"""A BERT encoder in plain torch, for the ``embed`` runtime: no ``transformers`` import.

``transformers``' model classes import its ``modeling_utils``, which brings sympy, scipy,
``torch._dynamo`` and ``torch.distributed``: some 120 MB of a sidecar's memory and
seconds of its start-up, for an encoder that is six layers of linear maps, layer norms
and attention. This module runs the same operations as ``transformers``' ``BertModel``
in eval mode (its default ``sdpa`` attention, no attention mask for an unpadded input,
as ``transformers`` passes for one text), in the same order on the same float32 tensors,
so its last hidden state is bit for bit the one ``transformers`` computes (a test
compares the embedding bytes with sentence-transformers' ``encode``).

The weights are mapped from ``model.safetensors`` (safetensors' ``mmap`` backend), so the
rows of the embedding table that no text has touched stay on disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

# The BERT configuration this encoder implements; a directory whose config.json says
# otherwise is refused at load.
SUPPORTED = {
    "model_type": "bert",
    "hidden_act": "gelu",
    "position_embedding_type": "absolute",
    "is_decoder": False,
    "add_cross_attention": False,
}


class EncoderConfigError(Exception):
    """The directory holds a model this encoder does not implement."""


def load_bert_encoder(torch, path: Path) -> Callable:  # noqa: ANN001
    """``forward(input_ids)``: the last hidden state, shape ``(1, tokens, hidden)``, of the
    BERT model in directory ``path`` (``config.json``, ``model.safetensors``) for one
    unpadded sequence of token ids (a ``(1, tokens)`` int64 tensor)."""
    from safetensors.torch import load_file

    config = json.loads((path / "config.json").read_text())
    wrong = {key: config.get(key, False) for key, want in SUPPORTED.items()}
    wrong = {key: got for key, got in wrong.items() if got != SUPPORTED[key]}
    if wrong:
        raise EncoderConfigError(f"{path} is not a BERT encoder this runtime runs: {wrong}")
    heads, eps = config["num_attention_heads"], config["layer_norm_eps"]
    weights = load_file(str(path / "model.safetensors"), device="cpu")
    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

    def tensor(name: str):  # noqa: ANN202
        try:
            return weights[prefix + name]
        except KeyError:
            raise EncoderConfigError(f"{path}/model.safetensors lacks {prefix + name}") from None

    def linear(name: str) -> tuple:
        return tensor(name + ".weight"), tensor(name + ".bias")

    words = tensor("embeddings.word_embeddings.weight")
    positions = tensor("embeddings.position_embeddings.weight")
    token_types = tensor("embeddings.token_type_embeddings.weight")
    embedding_norm = linear("embeddings.LayerNorm")
    layers = [
        tuple(
            linear(f"encoder.layer.{index}.{name}")
            for name in (
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
                "attention.output.LayerNorm",
                "intermediate.dense",
                "output.dense",
                "output.LayerNorm",
            )
        )
        for index in range(config["num_hidden_layers"])
    ]
    hidden_size = words.shape[1]
    head_size = hidden_size // heads
    scaling = head_size**-0.5
    functional = torch.nn.functional

    def norm(x, weight_bias):  # noqa: ANN001, ANN202
        return functional.layer_norm(x, (hidden_size,), *weight_bias, eps)

    def forward(input_ids):  # noqa: ANN001, ANN202
        length = input_ids.shape[1]
        # BertEmbeddings: words + token types (all 0), then + positions, then LayerNorm
        x = functional.embedding(input_ids, words) + token_types[0]
        x = norm(x + positions[:length], embedding_norm)
        shape = (1, length, heads, head_size)
        for query, key, value, out, out_norm, up, down, down_norm in layers:
            q = functional.linear(x, *query).view(shape).transpose(1, 2)
            k = functional.linear(x, *key).view(shape).transpose(1, 2)
            v = functional.linear(x, *value).view(shape).transpose(1, 2)
            attended = functional.scaled_dot_product_attention(q, k, v, scale=scaling)
            attended = attended.transpose(1, 2).contiguous().reshape(1, length, -1)
            attention = norm(functional.linear(attended, *out) + x, out_norm)
            inner = functional.gelu(functional.linear(attention, *up))
            x = norm(functional.linear(inner, *down) + attention, down_norm)
        return x

    return forward
