"""Sidecars: the gRPC model servers that run AI precompile calls (DESIGN section 7).

The sidecar side is ``serve`` (the ``sibyl sidecar serve`` command), ``server`` and
``runtimes``, which hands a model to its runtime's loader (``tensors`` for torch and
ONNX, ``embed``, ``llm``, ``prover`` for zk; ``upstream`` for an LLM served elsewhere),
each of which builds a ``model`` (with ``fixedpoint``, the rounding of model inputs and
outputs); the node side is ``client`` (the pool the precompiles call), ``manager``
(starts and watches sidecars as containers, processes or remote endpoints) and
``config`` (the ``[[sidecars]]`` tables of the node's config file). ``abi`` and
``attestation`` are shared: the node's precompiles and block verifier use them too.
"""
