"""The LLM runtime's upstream mode: forward each job to an OpenAI-compatible server.

Big models run on GPU servers that speak the OpenAI chat-completions API (vLLM,
llama.cpp's server, TGI). With ``--upstream URL --upstream-model NAME@REV`` the sidecar
sends each LLM request there (``POST URL/v1/chat/completions`` with the messages,
``max_tokens``, ``temperature`` and ``seed``) and signs what comes back, so the model is
only as trusted as its executors (DESIGN section 7). Its model id is keccak256 of
``"upstream:" ‖ name ‖ "@" ‖ revision``; the upstream is told ``model = name``.
"""

import json
import urllib.error
import urllib.request

from sidecars.abi import (
    LLM_ADDRESS,
    AbiError,
    decode_llm_input,
    encode_llm_output,
    for_model,
)
from sidecars.attestation import keccak
from sidecars.model import Failed, Model, ModelLoadError, Refused

TIMEOUT_SECONDS = 120.0
MAX_REPLY_BYTES = 4 << 20


def upstream_model_id(name_at_revision: str) -> bytes:
    return keccak(b"upstream:" + name_at_revision.encode())


def load_upstream(url: str, name_at_revision: str, expected_id: bytes | None = None) -> Model:
    """A model that forwards to the OpenAI-compatible server at ``url``."""
    name, at, revision = name_at_revision.partition("@")
    if not name or not at or not revision:
        raise ModelLoadError(f"--upstream-model must be NAME@REVISION, got {name_at_revision!r}")
    if not url.startswith(("http://", "https://")):
        raise ModelLoadError(f"--upstream must be an http:// or https:// URL, got {url!r}")
    model_id = upstream_model_id(name_at_revision)
    if expected_id is not None and model_id != expected_id:
        raise ModelLoadError(
            f"upstream model {name_at_revision} has id 0x{model_id.hex()}, but model id "
            f"0x{expected_id.hex()} was expected"
        )
    endpoint = url.rstrip("/") + "/v1/chat/completions"

    def execute(data: bytes) -> bytes:
        try:
            request = for_model(decode_llm_input(data), model_id)
        except AbiError as exc:
            raise Refused(f"bad LLM input: {exc}") from None
        body = {
            "model": name,
            "messages": request.messages(),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature_milli / 1000,
            "seed": request.seed,
        }
        return _complete(endpoint, body)

    return Model("llm", model_id, LLM_ADDRESS, {"upstream": name_at_revision}, execute)


def _complete(endpoint: str, body: dict) -> bytes:
    http = urllib.request.Request(
        endpoint, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(http, timeout=TIMEOUT_SECONDS) as response:
            reply = json.loads(response.read(MAX_REPLY_BYTES))
    except urllib.error.HTTPError as exc:
        raise Failed(f"upstream answered HTTP {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise Failed(f"upstream unreachable or its reply is not JSON: {exc}") from None
    try:
        text = reply["choices"][0]["message"]["content"]
        usage = reply.get("usage") or {}
        prompt, completion = (
            int(usage.get("prompt_tokens", 0)),
            int(usage.get("completion_tokens", 0)),
        )
        if not isinstance(text, str):
            raise TypeError("content is not a string")
        return encode_llm_output(text, prompt, completion)
    except (KeyError, IndexError, TypeError, ValueError, OverflowError) as exc:
        raise Failed(f"upstream reply is not a chat completion: {exc}") from None
