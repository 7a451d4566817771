"""Exceptions of the evaluation runner (the CLI turns them into one-line messages)."""


class EvalError(Exception):
    """Bad user input (arguments, data, weights): reported as one line, exit code 2."""


class CheckFailed(Exception):
    """``--check``: the result is further from Gluon-CV's number than the tolerance."""
