"""Every unmarked command of README.md and docs/*.md runs, as written, and exits 0.

Each guide runs in a fresh copy of the prepared working directory (tests/docs/workspace.py), its
commands in order in one shell. The README runs where `make demo` leaves a fresh clone: the demo's
stages that write what "A first session" reads (runs/demo/train/model.pt and .onnx,
runs/demo/digits_test/<class>/*.png, runs/demo/digits.avi) run first into a clone of its own.
A command marked `# needs: ...` is not run (tests/docs/blocks.py lists the markers).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.docs.blocks import blocks_of, doc_files
from tests.docs.runner import deprecated_spellings, run_commands
from tests.docs.workspace import clone_like, copy_workspace, environment, prepare

pytest.importorskip("torch")
pytest.importorskip("torch_pruning")
pytest.importorskip("executorch")

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# The demo stages whose files "A first session" reads.
README_DEMO_STAGES = ("train", "images", "export", "camera")
RUN_FOLDER_OUT = re.compile(r"--out\s+(runs/[\w.-]+)(?=\s|$)")


def runnable(path: Path) -> list:
    return [command for block in blocks_of(path, REPO) for command in block.commands if not command.needs]


def run_folders_made(path: Path) -> set[str]:
    """The `--out runs/NAME` folders a doc's commands write: absent from its working directory, as
    on a reader's machine (a doc that trains runs/cvd_frozen starts without one)."""
    return {match for command in runnable(path) for match in RUN_FOLDER_OUT.findall(command.text)}


GUIDES = [path.relative_to(REPO).as_posix() for path in doc_files(REPO)[1:] if runnable(path)]


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("docs-workspace")
    prepare(REPO, base)
    return base


def run_doc(path: Path, clone: Path, logs: Path) -> None:
    env = environment(BIN, REPO, clone.parent / "home")
    log = logs / f"{path.stem}.log"
    failure = run_commands(runnable(path), clone, env, log)
    assert failure is None, str(failure)
    assert not deprecated_spellings(log), "old option spellings in the doc:\n" + "\n".join(deprecated_spellings(log))


@pytest.mark.slow
@pytest.mark.parametrize("name", GUIDES)
def test_every_unmarked_command_of_the_guide_runs(name, prepared, tmp_path):
    run_doc(REPO / name, copy_workspace(prepared, tmp_path, run_folders_made(REPO / name)), tmp_path)


@pytest.mark.slow
def test_the_readme_runs_as_written_after_the_demo(tmp_path):
    from edgevision.demo import STAGES, run_demo

    clone = clone_like(REPO, tmp_path / "clone")
    (tmp_path / "home").mkdir()
    run_demo(clone / "runs" / "demo", [stage for stage in STAGES if stage[0] in README_DEMO_STAGES],
             report=lambda line: None)
    run_doc(REPO / "README.md", clone, tmp_path)
