"""`edgevision camera --self-check`: replay the model's reference set before the first frame.

strict: a model that fails the check, or has no reference set to check, does not start (one line,
exit status 2): strict means "proven on this device, or not at all". warn: a failure or a missing
set is one warning line and the app starts anyway.
"""

from __future__ import annotations

import logging
import os

from deploy.errors import EdgevisionError
from deploy.verify import VerifyResult, reference_of, verify

log = logging.getLogger("edgevision.camera")
MODES = ("strict", "warn")


def self_check(classifier, model_path: str | os.PathLike, mode: str | None) -> VerifyResult | None:
    """Check `classifier` (loaded from `model_path`) against its reference set; None when `mode`
    is None (off) or, in warn mode, when there is no set. Raises `EdgevisionError` in strict mode."""
    if mode is None:
        return None
    if mode not in MODES:
        raise EdgevisionError(f"--self-check must be {' or '.join(MODES)}, got {mode!r}")
    try:
        result = verify(classifier, reference_of(model_path, classifier), model_path)
    except EdgevisionError as exc:
        if mode == "strict":
            raise EdgevisionError(f"--self-check strict: {exc}") from None
        log.warning("self-check skipped: %s", exc)
        return None
    if result.passed:
        log.info("self-check: %s", result.line())
    elif mode == "strict":
        raise EdgevisionError(f"--self-check strict: {model_path} does not compute what it did where it was made: "
                              f"{result.line()}")
    else:
        log.warning("self-check FAILED, starting anyway (--self-check warn): %s", result.line())
    return result
