"""Every command's parser: help without torch, examples that parse, a help line per option,
`-v/--verbose`, and the old spellings of options still working with a one-line note."""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import edgevision
from deploy.cli_util import CommandParser

REPO = Path(__file__).resolve().parents[2]

# command -> "module:function" building its parser
PARSERS = {
    "demo": "edgevision.demo:build_parser",
    "show-data": "train.show_data:build_parser",
    "train": "train.cli:build_train_parser",
    "eval": "train.cli:build_eval_parser",
    "prune": "quantize.cli:prune_parser",
    "quantize": "quantize.cli:quantize_parser",
    "export": "deploy.export.cli:export_parser",
    "predict": "deploy.cli:predict_parser",
    "info": "deploy.cli:info_parser",
    "verify": "deploy.cli:verify_parser",
    "camera": "camera_app.cli:camera_parser",
    "bench": "benchmarks.cli:build_parser",
    "report": "benchmarks.cli:build_report_parser",
    "sweep": "benchmarks.sweep:build_parser",
}

BLOCKER = textwrap.dedent("""\
    import sys

    class BlockHeavy:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("torch", "torchvision", "onnx", "executorch"):
                raise ImportError(f"{name} imported by --help")
            return None

    sys.meta_path.insert(0, BlockHeavy())
""")


def parser_of(command: str) -> CommandParser:
    module, function = PARSERS[command].split(":")
    return getattr(importlib.import_module(module), function)()


def test_every_command_has_a_parser_here():
    assert set(PARSERS) == set(edgevision.COMMANDS)


@pytest.fixture(scope="module")
def blocker(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    return folder


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_help_needs_no_torch_and_ends_with_examples(command, blocker):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO)])}
    done = subprocess.run([sys.executable, "-m", "edgevision", command, "--help"], cwd=REPO, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    epilog = done.stdout.split("\nexamples:\n")[-1].splitlines()
    assert 1 <= len(epilog) <= 3 and all(line.startswith(f"  edgevision {command}") for line in epilog), done.stdout


def test_the_blocker_blocks(blocker):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), str(REPO)])}
    done = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    assert done.returncode == 1 and "torch imported by --help" in done.stderr


def test_bare_edgevision_lists_the_commands_and_exits_2():
    done = subprocess.run([sys.executable, "-m", "edgevision"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and done.stdout == ""
    assert all(f"  {name} " in done.stderr for name in PARSERS)
    helped = subprocess.run([sys.executable, "-m", "edgevision", "--help"], cwd=REPO, capture_output=True, text=True)
    assert helped.returncode == 0 and all(f"  {name} " in helped.stdout for name in PARSERS)


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_option_has_help(command):
    shown = [action for action in parser_of(command)._actions if action.help is not argparse.SUPPRESS]
    silent = [action.option_strings or [action.dest] for action in shown if not (action.help or "").strip()]
    assert not silent, f"{command}: no help for {silent}"


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_every_command_takes_verbose(command):
    parser = parser_of(command)
    example = shlex.split(parser.examples[0])[2:]
    assert not parser.parse_args(example).verbose
    assert parser.parse_args([*example, "-v"]).verbose and parser.parse_args(["--verbose", *example]).verbose


@pytest.mark.parametrize("command", sorted(PARSERS))
def test_examples_parse_in_the_current_spelling(command, capsys):
    parser = parser_of(command)
    assert 1 <= len(parser.examples) <= 3
    for example in parser.examples:
        words = shlex.split(example)
        assert words[:2] == ["edgevision", command], example
        parser.parse_args(words[2:])
        assert capsys.readouterr().err == "", example  # no deprecation note


def parse(command: str, argv: list[str], capsys) -> tuple[argparse.Namespace, list[str]]:
    args = parser_of(command).parse_args(argv)
    return args, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("command, argv, dest, value, note", [
    ("prune", ["--model", "m.pt", "-o", "p.pt", "--ratio", "0.5", "--budget", "2"], "max_drop", 2.0,
     "edgevision prune: --budget is deprecated, use --max-drop"),
    ("prune", ["m.pt", "--out", "p.pt", "--ratio", "0.5"], "model", "m.pt",
     "edgevision prune: a CHECKPOINT without --model is deprecated, use --model CHECKPOINT"),
    ("quantize", ["m.pt", "-o", "q.onnx", "--data", "digits"], "model", "m.pt",
     "edgevision quantize: a CHECKPOINT without --model is deprecated, use --model CHECKPOINT"),
    ("quantize", ["--model", "m.pt", "-o", "q.onnx", "--data", "digits", "--budget", "0.5"], "max_drop", 0.5,
     "edgevision quantize: --budget is deprecated, use --max-drop"),
    ("bench", ["m.onnx", "--budget", "3"], "seconds", 3.0, "edgevision bench: --budget is deprecated, use --seconds"),
    ("sweep", ["--model", "m.pt", "--data", "digits", "--out", "o", "--quant-budget", "0.25"], "max_drop", 0.25,
     "edgevision sweep: --quant-budget is deprecated, use --max-drop"),
    ("info", ["m.onnx"], "model", "m.onnx",
     "edgevision info: a MODEL without --model is deprecated, use --model MODEL"),
    ("verify", ["m.onnx", "--threads", "1"], "model", "m.onnx",
     "edgevision verify: a MODEL without --model is deprecated, use --model MODEL"),
])
def test_old_spellings_parse_as_the_new_with_one_line(command, argv, dest, value, note, capsys):
    args, err = parse(command, argv, capsys)
    assert getattr(args, dest) == value and err == [note]


def test_old_spellings_are_hidden_from_help():
    for command, old in (("prune", "--budget"), ("quantize", "--budget"), ("bench", "--budget"),
                         ("sweep", "--quant-budget")):
        assert old not in parser_of(command).format_help(), command


def test_new_spellings_say_nothing_and_a_missing_model_is_a_usage_error(capsys):
    args, err = parse("prune", ["--model", "m.pt", "-o", "p.pt", "--ratio", "0.5", "--max-drop", "1"], capsys)
    assert (args.model, args.out, args.max_drop) == ("m.pt", "p.pt", 1.0) and err == []
    with pytest.raises(SystemExit) as info:
        parser_of("quantize").parse_args(["-o", "q.onnx", "--data", "digits"])
    assert info.value.code == 2 and "the following arguments are required: --model" in capsys.readouterr().err
    assert all(" --model MODEL " in parser_of(c).format_usage() for c in ("prune", "quantize", "info", "verify"))


@pytest.mark.parametrize("argv, loop", [([], 0), (["--loop"], -1), (["--loop", "3"], 3), (["--loop", "-1"], -1),
                                        (["--loop", "--realtime"], -1)])
def test_camera_loop_alone_means_forever(argv, loop, capsys):
    args, err = parse("camera", ["--model", "m.onnx", "--source", "clip.avi", *argv], capsys)
    assert args.loop == loop and err == []


def test_an_old_spelling_runs_the_command_with_its_note(tmp_path):
    from tests.runtime.onnx_models import make_onnx, tiny_card

    model = make_onnx(tmp_path / "m.onnx", card=tiny_card())
    done = subprocess.run([sys.executable, "-m", "edgevision", "info", str(model)], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0 and '"architecture": "tiny"' in done.stdout
    assert done.stderr.splitlines() == ["edgevision info: a MODEL without --model is deprecated, use --model MODEL"]
