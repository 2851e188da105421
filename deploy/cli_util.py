"""What every command-line entry point shares: one parser convention (`-v/--verbose`, examples at
the end of `--help`, old spellings that still parse with a one-line note), one-line errors for the
user's mistakes, the library's progress messages (the `edgevision` logger) shown on standard
error, so that standard output carries only results (`edgevision predict --json | jq` works while
a model loads), and the third-party libraries' own output held back unless `--verbose`
(`deploy.quiet`), shown when the command fails.

One `main` convention: every CLI module has `main(argv: list[str] | None = None) -> int` taking
`[SUBCOMMAND, *options]` exactly as `edgevision` passes it, and implements it with
`run_subcommand(argv, {name: Subcommand(parser, run)})`; below the CLI modules no function takes an
`argparse.Namespace` (the commands build spec dataclasses from it).

Nothing here imports torch: `edgevision COMMAND --help` builds its parser from torch-free modules.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields

from deploy.errors import EdgevisionError
from deploy.quiet import Held, hold_library_output


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the time (pytest's capture, a redirect)."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def show_progress(verbose: bool = False) -> None:
    """Print the library's INFO messages (DEBUG with `verbose`) of the `edgevision.*` loggers as plain
    lines; the handler is added once per process."""
    logger = logging.getLogger("edgevision")
    if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
        logger.addHandler(_StderrHandler())
        logger.propagate = False  # a library that configured the root logger would print each line twice
    if verbose:
        logger.setLevel(logging.DEBUG)
    elif logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)


def show_held(held: Held, prog: str) -> None:
    """After a failure: what the libraries wrote, which may say why."""
    if held.text().strip():
        print(f"{prog}: what the libraries wrote (held back without --verbose):\n{held.tail()}", file=sys.stderr)


def run_cli(command: Callable[[], int | None], prog: str, verbose: bool = False) -> int:
    """Run `command`; a user's mistake becomes `prog: error: ...` on one line and exit status 2.

    Without `verbose` the libraries' own output (native code's lines, their warnings) is held back
    while it runs and shown above the error when the command fails or returns a non-zero status.
    """
    show_progress(verbose)
    held = Held()
    try:
        with hold_library_output(enabled=not verbose) as held:
            status = command() or 0
    except EdgevisionError as exc:
        show_held(held, prog)
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (`edgevision info m.onnx | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except Exception:
        show_held(held, prog)
        raise
    if status:
        show_held(held, prog)
    return status


@dataclass(frozen=True)
class Subcommand:
    """One command of a CLI module: how to build its parser and what runs the parsed options.

    `run(args)` runs inside `run_cli`. With `spec` (a dataclass) `run` gets that spec instead, its
    fields filled from the options of the same name: the way a module that is not a `cli.py` keeps
    `argparse.Namespace` out of its functions. `parse(parser, options)` replaces
    `parser.parse_args(options)` where parsing takes more (a recipe's defaults); with
    `wants_options` the command is called as `run(args, parser, options)`, for one that parses
    again (a preset) or records its command line.
    """

    parser: Callable[[], argparse.ArgumentParser]
    run: Callable[..., int | None]
    parse: Callable[[argparse.ArgumentParser, list[str]], argparse.Namespace] | None = None
    wants_options: bool = False
    spec: type | None = None


def run_subcommand(argv: Sequence[str] | None, commands: Mapping[str, Subcommand]) -> int:
    """The one `main(argv)` of every CLI module: `argv` is `[SUBCOMMAND, *options]`, as `edgevision`
    passes it (None: `sys.argv[1:]`); an unknown or missing SUBCOMMAND prints the usage and returns 2.
    A single-command package's `__main__` passes `[SUBCOMMAND, *sys.argv[1:]]`, so that
    `python -m camera_app --model ...` still works."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] not in commands:
        print(f"usage: edgevision {{{','.join(commands)}}} [options]", file=sys.stderr)
        return 2
    name, options = argv[0], argv[1:]
    command = commands[name]
    parser = command.parser()
    args = command.parse(parser, options) if command.parse else parser.parse_args(options)
    if command.wants_options:
        return run_cli(lambda: command.run(args, parser, options), f"edgevision {name}", verbose=args.verbose)
    if command.spec is not None:
        spec = command.spec(**{f.name: getattr(args, f.name) for f in fields(command.spec) if hasattr(args, f.name)})
        return run_cli(lambda: command.run(spec), f"edgevision {name}", verbose=args.verbose)
    return run_cli(lambda: command.run(args), f"edgevision {name}", verbose=args.verbose)


VERBOSE_HELP = "show third-party libraries' native output and debug messages"

PROVIDER_HELP = ("where the model runs: auto (onnxruntime: CUDA when it is there, else the CPU; other backends: "
                 "the CPU), cpu, cuda (onnxruntime-gpu, the gpu extra; or a .pt on torch's CUDA) or tensorrt "
                 "(onnxruntime-gpu's TensorRT provider: builds its engine while loading)")
PRECISION_HELP = "compute precision of a .pt checkpoint on the torch backend: fp32 (default), fp16 or bf16"


def add_device_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """`--provider` and `--precision`, one definition for every command that loads a model (predict,
    verify, bench, camera); the values come from the backend registry, and `deploy.load` refuses
    one the chosen backend does not take (`deploy.backends.check_options`)."""
    from deploy.backends import list_precisions, list_providers

    parser.add_argument("--provider", default="auto", choices=list_providers(), help=PROVIDER_HELP)
    parser.add_argument("--precision", choices=list_precisions(), help=PRECISION_HELP)


def device_options(provider: str | None, precision: str | None) -> dict:
    """The backend options `add_device_options` parsed, as `deploy.load` takes them (unset ones left out)."""
    return {name: value for name, value in (("provider", provider), ("precision", precision)) if value}


class _OldSpelling(argparse.Action):
    """An old spelling of the option `new`: parses as it does, says so on stderr once."""

    def __init__(self, option_strings: list[str], dest: str, new: str, target: str, **kwargs) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.new = new
        self.target = target
        self.noted = False

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if not self.noted:  # a parser that parses twice (prune's --preset) says it once
            old = option_string or f"a {self.metavar} without {self.new}"
            new = self.new if option_string else f"{self.new} {self.metavar}"
            print(f"{parser.prog}: {old} is deprecated, use {new}", file=sys.stderr)
            self.noted = True
        setattr(namespace, self.target, values)


class CommandParser(argparse.ArgumentParser):
    """The parser of one `edgevision` command: `-v/--verbose`, the description wrapped to the
    terminal, an `examples:` epilog of commands that run as written, and old spellings of options
    (`old_option`, `old_positional`) that parse as the new one, hidden from --help."""

    def __init__(self, prog: str, description: str, examples: Sequence[str], **kwargs) -> None:
        width = max(min(shutil.get_terminal_size().columns, 100) - 2, 40)
        paragraphs = [textwrap.fill(p, width) for p in description.split("\n\n")]
        super().__init__(
            prog=prog, description="\n\n".join(paragraphs),
            epilog="examples:\n" + "\n".join(f"  {example}" for example in examples),
            formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs,
        )
        self.examples = list(examples)
        self.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
        self._required_unless_old: list[argparse.Action] = []

    def old_option(self, new: argparse.Action, *flags: str) -> None:
        """`flags` (say --budget) parse as the option `new` (--max-drop) did, with a note."""
        self.add_argument(*flags, action=_OldSpelling, new=new.option_strings[-1], target=new.dest,
                          dest=new.dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS, nargs=new.nargs,
                          const=new.const, type=new.type, choices=new.choices, metavar=new.metavar)

    def old_positional(self, new: argparse.Action, name: str) -> None:
        """An optional positional argument `name` that parses as the option `new`. A required `new`
        is checked after parsing (either spelling will do) and still shown as required."""
        self.add_argument(name, nargs="?", action=_OldSpelling, new=new.option_strings[-1], target=new.dest,
                          default=argparse.SUPPRESS, help=argparse.SUPPRESS, type=new.type, metavar=name.upper())
        if new.required:
            new.required = False
            self._required_unless_old.append(new)

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        missing = [action for action in self._required_unless_old if getattr(namespace, action.dest, None) is None]
        if missing:
            self.error("the following arguments are required: " + ", ".join(a.option_strings[-1] for a in missing))
        return namespace, extras

    def format_usage(self) -> str:
        return self._shown_required(super().format_usage)

    def format_help(self) -> str:
        return self._shown_required(super().format_help)

    def _shown_required(self, format_text: Callable[[], str]) -> str:
        for action in self._required_unless_old:
            action.required = True
        try:
            return format_text()
        finally:
            for action in self._required_unless_old:
                action.required = False
