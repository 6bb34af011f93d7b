"""The lab's one-line errors."""


class UsageError(Exception):
    """A bad argument: printed as one line, exit code 2."""
