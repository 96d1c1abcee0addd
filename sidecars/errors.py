"""The base of every sidecar error an operator can act on (a bad ``[[sidecars]]`` table,
a key file, a container that will not start).

The sidecars import nothing from the node, so this is their own base; the command line
prints it, like the node's ``SibylError``, as one line and exits non-zero.
"""


class SidecarError(Exception):
    """An error whose message tells the operator what to fix."""
