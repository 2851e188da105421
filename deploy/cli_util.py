"""What every command-line entry point shares: one-line errors for the user's mistakes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from deploy.errors import EdgevisionError


def run_cli(command: Callable[[], int | None], prog: str) -> int:
    """Run `command`; a user's mistake becomes `prog: error: ...` on one line and exit status 2."""
    try:
        return command() or 0
    except EdgevisionError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`edgevision info m.onnx | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
