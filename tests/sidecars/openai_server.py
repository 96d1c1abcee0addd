"""A small OpenAI-compatible chat-completions server for the upstream-mode tests: the
dev LLM behind ``POST /v1/chat/completions`` (aiohttp), as vLLM or llama.cpp's server
would serve a big model. Run as ``python openai_server.py MODEL_DIR PORT NAME``."""

import json
import sys
from pathlib import Path

from aiohttp import web
from eth_abi import encode as abi_encode

from sidecars.abi import LLM_ADDRESS, LLM_INPUT_TYPES, decode_llm_output
from sidecars.runtimes import load_model


def main() -> None:
    directory, port, served_name = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    model = load_model("llm", directory)

    async def complete(request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("model") != served_name:
            return web.json_response({"error": {"message": "unknown model"}}, status=404)
        data = abi_encode(
            LLM_INPUT_TYPES,
            [model.model_id, json.dumps(body["messages"]), body.get("max_tokens", 16),
             int(round(body.get("temperature", 0) * 1000)), body.get("seed", 0),
             b"\x00" * 4, 0, 1],
        )  # fmt: skip
        text, prompt, completion = decode_llm_output(model.run(LLM_ADDRESS, model.model_id, data))
        return web.json_response(
            {
                "object": "chat.completion",
                "model": served_name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": prompt, "completion_tokens": completion},
            }  # fmt: skip
        )

    app = web.Application()
    app.router.add_post("/v1/chat/completions", complete)
    web.run_app(app, host="127.0.0.1", port=port, print=None, shutdown_timeout=0.5)


if __name__ == "__main__":
    main()
