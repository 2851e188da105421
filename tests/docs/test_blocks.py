"""The extractor finds every shell block and command of the docs, and refuses what it cannot run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.docs.blocks import NEEDS, DocError, blocks_of, doc_files

REPO = Path(__file__).resolve().parents[2]
DOCS = doc_files(REPO)
SHELL_FENCE = re.compile(r"^\s*(?:```|~~~)\s*(?:bash|sh|shell|console)\b", re.MULTILINE | re.IGNORECASE)


def parse(tmp_path: Path, markdown: str):
    path = tmp_path / "doc.md"
    path.write_text(markdown, encoding="utf-8")
    return blocks_of(path, tmp_path)


@pytest.mark.parametrize("path", DOCS, ids=lambda path: path.name)
def test_every_shell_fence_of_the_docs_is_a_block_with_commands(path):
    blocks = blocks_of(path, REPO)  # DocError: an untagged fence, an unknown marker, an empty block
    assert len(blocks) == len(SHELL_FENCE.findall(path.read_text(encoding="utf-8")))
    assert all(block.commands for block in blocks)


def test_the_readme_and_every_guide_are_read():
    names = [path.relative_to(REPO).as_posix() for path in DOCS]
    assert names[0] == "README.md" and "docs/quantize.md" in names and "docs/raspberry-pi.md" in names
    commands = [command for path in DOCS for block in blocks_of(path, REPO) for command in block.commands]
    assert sum(not command.needs for command in commands) >= 40
    assert {name for command in commands for name in command.needs} <= set(NEEDS)


def test_continuations_heredocs_comments_and_markers(tmp_path):
    (block,) = parse(tmp_path, """# t

```bash
# a comment line is no command
edgevision train --data digits \\
    --out runs/x   # trailing comment
TOKEN=$(python -c 'print(1)'); echo "$TOKEN"
python3 - a b <<'EOF'
import sys
EOF
edgevision camera --model m.onnx --source 0   # needs: camera
sudo apt install x   # needs: pi, network
```
""")
    assert [(c.line, c.needs) for c in block.commands] == [
        (5, ()), (7, ()), (8, ()), (11, ("camera",)), (12, ("pi", "network"))]
    assert block.commands[0].text == "edgevision train --data digits \\\n    --out runs/x   # trailing comment"
    assert block.commands[2].text.endswith("import sys\nEOF")


def test_console_blocks_run_only_prompted_lines(tmp_path):
    (block,) = parse(tmp_path, "```console\n$ edgevision info model.onnx\n{\"card\": 1}\n$ ls\n```\n")
    assert [c.text for c in block.commands] == ["edgevision info model.onnx", "ls"]


def test_other_languages_are_not_run(tmp_path):
    assert parse(tmp_path, "```text\nedgevision train\n```\n```python\nprint(1)\n```\n") == []


@pytest.mark.parametrize("markdown, message", [
    ("```\nedgevision train\n```\n", "without a language"),
    ("```bash\nls   # needs: quantum\n```\n", "unknown marker 'needs: quantum'"),
    ("```bash\nls   # needs:\n```\n", "unknown marker"),
    ("```bash\n# needs: gpu\nls\n```\n", "marks nothing"),
    ("```bash\n# only a comment\n\n```\n", "bash block without a command"),
    ("```bash\nls\n", "never closed"),
    ("```bash\ncat <<EOF\nno end\n```\n", "heredoc never ends"),
])
def test_what_the_extractor_refuses(tmp_path, markdown, message):
    with pytest.raises(DocError, match=re.escape(message)) as error:
        parse(tmp_path, markdown)
    assert str(error.value).startswith("doc.md:")


def test_deprecation_notes_are_found_per_command(tmp_path):
    from tests.docs.runner import START, deprecated_spellings

    log = tmp_path / "doc.log"
    log.write_text(f"{START} 0 README.md:3 1.0\nok\n{START} 1 README.md:4 2.0\n"
                   f"edgevision prune: --budget is deprecated, use --max-drop\n{START} end 3.0\n")
    assert deprecated_spellings(log) == ["README.md:4: edgevision prune: --budget is deprecated, use --max-drop"]
