"""The one exception type for mistakes a user can make (bad path, wrong shape, unknown name).

Command-line entry points print these as a single line and exit with status 2; anything else
is our bug and keeps its traceback.
"""


class EdgevisionError(Exception):
    """A problem with the user's input, worded as one line that names the file or value."""


def first_line(exc: BaseException, limit: int = 160) -> str:
    """The first non-blank line of `exc`'s message, cut to `limit` characters, for one-line errors.

    Safe inside an `except` block: a message that is empty or blank gives the exception's type name
    (`str(exc).splitlines()[0]` would raise IndexError there instead).
    """
    for line in str(exc).splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__
