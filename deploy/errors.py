"""The one exception type for mistakes a user can make (bad path, wrong shape, unknown name).

Command-line entry points print these as a single line and exit with status 2; anything else
is our bug and keeps its traceback.
"""


class EdgevisionError(Exception):
    """A problem with the user's input, worded as one line that names the file or value."""
