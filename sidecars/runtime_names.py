"""The names of the runtimes a sidecar can serve a model with.

Kept apart from :mod:`sidecars.runtimes` (which loads them) and :mod:`sidecars.config`
(which reads the node's sidecar tables and knows the bundled dev models) so that the
command line of a sidecar process, inside an image that ships neither the node's
``genesis`` package nor numpy at import, names them without importing either.
"""

RUNTIMES = ("torch", "onnx", "embed", "llm", "zk")
