"""The base of every error a user can act on.

The command line prints a :class:`SibylError` as one line and exits non-zero; anything
else is a bug and keeps its traceback.
"""


class SibylError(Exception):
    """An error whose message tells the user what to fix."""


class ExecutionStopped(Exception):
    """Raised into a running execution to end it on purpose (a trace's timeout or size
    bound, a node stopping): never a property of the block or transaction being
    executed, so the importer and the builder let it through instead of calling them
    invalid."""
