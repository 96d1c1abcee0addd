"""``sibyl sidecar serve``: load models, check their ids, and serve them over gRPC.

``--runtime R --model PATH`` names one model; repeated, the pairs name several models that
one process serves (``--model-id``, if given, once per pair, in the same order). The dev
default runs its bundled models so, in one process: each process that imports torch pays
some 250 MB for it, whichever of the torch, embed or LLM runtimes loads it.

For ``--runtime llm`` the model is a local transformers directory, or with ``--upstream
URL --upstream-model NAME@REV`` an OpenAI-compatible server (:mod:`sidecars.upstream`).
Everything that can be wrong with the operator's flags (a tampered artifact, a bad key
file, a taken port, a runtime this build lacks) is checked before the server starts and
reported as one ``error: ...`` line on stderr with a non-zero exit code, never a
traceback. The process then serves until SIGTERM or SIGINT, and stops gracefully.

The node imports this module for its flags and ``PARENT_PID_ENV`` alone, so the model
runtimes and the gRPC server are imported by :func:`main`, in the sidecar's process.
"""

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from sidecars.attestation import signing_key
from sidecars.keys import KeyFileError, load_key
from sidecars.runtime_names import RUNTIMES

if TYPE_CHECKING:
    from sidecars.model import Model

log = logging.getLogger("sidecars.serve")

EXIT_BAD_CONFIG = 2
STOP_GRACE_SECONDS = 2.0


class ServeError(Exception):
    """The sidecar cannot start; the message says why."""


# Set by the node's sidecar manager for the processes it starts.
PARENT_PID_ENV = "SIBYL_PARENT_PID"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of ``sibyl sidecar serve`` (DESIGN section 8), also ``python -m
    sidecars.serve``'s: the node starts its process sidecars that way, so a sidecar
    process never imports the node."""
    parser.add_argument(
        "--runtime", required=True, choices=RUNTIMES, action="append", help="repeat per model"
    )
    parser.add_argument(
        "--model", type=Path, action="append", help="the model file or directory; one per runtime"
    )
    parser.add_argument("--upstream", metavar="URL", help="llm: an OpenAI-compatible server")
    parser.add_argument("--upstream-model", metavar="NAME@REV", help="llm: the upstream's model")
    parser.add_argument(
        "--model-id", action="append", help="expected model id (0x keccak256 of the artifact)"
    )
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--executor-key", required=True, type=Path)


def main(args: argparse.Namespace) -> int:
    """Run the sidecar described by the CLI flags; returns the process exit code."""
    from sidecars.model import ModelLoadError

    try:
        server, port, stop = _start(args)
    except (ServeError, ModelLoadError, KeyFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_CONFIG
    # Wake up now and then: a signal the kernel hands to one of grpc's threads only runs
    # its Python handler once the main thread is back in the interpreter. A sidecar the
    # node started as a process also ends when the node does, even on SIGKILL.
    parent = os.environ.get(PARENT_PID_ENV)
    while not stop.wait(0.2):
        if parent is not None and os.getppid() != int(parent):
            log.info("event=parent_gone parent_pid=%s", parent)
            break
    log.info("event=stopping port=%d", port)
    server.stop(STOP_GRACE_SECONDS).wait()
    log.info("event=stopped port=%d", port)
    return 0


def _start(args: argparse.Namespace):
    key = load_key(args.executor_key)
    executor = key.public_key.to_canonical_address()
    models = _load(args)
    address = f"{args.host}:{args.port}"
    from sidecars.server import build_server

    try:
        server, port = build_server(models, signing_key(key), executor, address)
    except RuntimeError:
        raise ServeError(
            f"cannot listen on {address}: the port is taken or the host is wrong"
        ) from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server.start()
    for model in models:
        log.info(
            "event=serving runtime=%s model=0x%s executor=0x%s address=%s:%d load=%s",
            model.runtime,
            model.model_id.hex(),
            executor.hex(),
            args.host,
            port,
            "first_call" if model.loads_on_first_call else "done",
        )
    return server, port, stop


def _load(args: argparse.Namespace) -> "list[Model]":
    """The models of the flags: local artifacts, or for ``llm`` one upstream server."""
    from sidecars.runtimes import load_model
    from sidecars.upstream import load_upstream

    runtimes, paths = args.runtime, args.model or []
    ids = [_parse_model_id(text) for text in args.model_id or []]
    if ids and len(ids) != len(runtimes):
        raise ServeError(
            f"--model-id given {len(ids)} times for {len(runtimes)} --runtime: "
            "give it once per model, in the same order, or not at all"
        )
    expected = ids or [None] * len(runtimes)
    upstream, upstream_model = args.upstream, args.upstream_model
    if upstream or upstream_model:
        if runtimes != ["llm"]:
            raise ServeError("--upstream is for one --runtime llm only")
        if not (upstream and upstream_model) or paths:
            raise ServeError(
                "upstream mode takes --upstream URL and --upstream-model NAME@REV, no --model"
            )
        return [load_upstream(upstream, upstream_model, expected[0])]
    if not paths:
        raise ServeError("--model is required (or, for llm, --upstream and --upstream-model)")
    if len(paths) != len(runtimes):
        raise ServeError(
            f"--runtime given {len(runtimes)} times and --model {len(paths)}: "
            "each model takes its own --runtime R --model PATH pair"
        )
    models = [
        load_model(runtime, path, model_id)
        for runtime, path, model_id in zip(runtimes, paths, expected, strict=True)
    ]
    seen: dict[bytes, Path] = {}
    for model, path in zip(models, paths, strict=True):
        if model.model_id in seen:
            raise ServeError(f"{path} and {seen[model.model_id]} are the same model")
        seen[model.model_id] = path
    return models


def _parse_model_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ServeError(f"--model-id must be 32 bytes as 0x + 64 hex digits, got {text!r}")
    return raw


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="sidecars.serve", description="serve models over gRPC")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    add_arguments(parser)
    arguments = parser.parse_args()
    logging.basicConfig(
        level=arguments.log_level.upper(),
        format="%(asctime)s %(levelname)-5s %(name)s %(message)s",
        stream=sys.stderr,
    )
    sys.exit(main(arguments))
