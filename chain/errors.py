"""The base of every error a user can act on.

The command line prints a :class:`SibylError` as one line and exits non-zero; anything
else is a bug and keeps its traceback.
"""


class SibylError(Exception):
    """An error whose message tells the user what to fix."""
