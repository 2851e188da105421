"""The demo's export stage: the digits checkpoint as ONNX and ExecuTorch, each verified."""

from __future__ import annotations

from deploy.export.pipeline import export_checkpoint


def export_stage(state) -> str:
    """Export to every CPU format and check parity on the held-out PNG digits."""
    checkpoint = state.artifacts["checkpoint"]
    data = f"folder:{state.artifacts['images']}"
    lines = []
    for fmt, suffix in (("onnx", "onnx"), ("executorch", "pte")):
        result = export_checkpoint(checkpoint, fmt, checkpoint.with_suffix(f".{suffix}"), data=data)
        parity = result.card.parity
        if not result.passed:
            raise RuntimeError(f"{fmt} export failed its parity check: {parity}")
        state.artifacts[fmt] = result.path
        lines.append(
            f"{result.path.name} (top-1 agreement {parity['top1_agreement']:.2%}, "
            f"max |logit diff| {parity['max_abs_logit_diff']:.1e} on {parity['images']} images)"
        )
    return "exported " + "; ".join(lines)
