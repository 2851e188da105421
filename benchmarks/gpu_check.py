"""`make gpu-check` / `python -m benchmarks.gpu_check`: what an NVIDIA GPU does with `make demo`'s model.

One table: TensorRT engines built here from the demo's ONNX (fp32, fp16, Q/DQ int8; `edgevision
export --model M.onnx --format tensorrt`), onnxruntime-gpu's CUDA and TensorRT providers on the
fp32 ONNX, and the PyTorch checkpoint on CUDA in eager mode at fp32, fp16 and bf16. Each row:
the replay of the reference set stored with the model (`deploy.verify`), top-1 on the demo's
held-out digits, load time, and the first and steady (p50 / p99) latency at batch 1 and 8.

It runs whatever is installed and says why each other row is skipped: the PyTorch rows need only
torch with CUDA and numpy, from a source checkout (`PYTHONPATH=. python -m benchmarks.gpu_check`;
without OpenCV they are timed and verified, and say that top-1, which reads image files, was not
scored); nothing heavy is imported until a row runs. Without a GPU (or with
--dry-run) it is a dry run: it prints what it would run and why each row is skipped, and exits 0
(CI runs it so). Each row runs in a process of its own (runtimes that bring their own CUDA
libraries do not share one), and a row not run stays "unverified" in the table written to --out
(gpu_check.md, gpu_check.json) for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import importlib.metadata
import importlib.util
import json
import multiprocessing
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmarks.table import Heading, Line, Table, to_markdown

DEFAULT_ARTIFACTS = Path("runs/demo")
DEFAULT_OUT = Path("runs/gpu-check")
BATCHES = (1, 8)
ROW_TIMEOUT_S = 1800.0  # an engine build on a small board may take minutes
BUILD_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class Artifacts:
    """The files of `make demo` (or another run laid out alike) that the check starts from."""

    checkpoint: Path  # train/model.pt
    onnx: Path  # train/model.onnx, with its reference set model.onnx.ref.npz
    images: Path  # digits_test/: class folders of held-out images, for top-1

    @classmethod
    def under(cls, root: Path) -> Artifacts:
        return cls(root / "train" / "model.pt", root / "train" / "model.onnx", root / "digits_test")


@dataclass(frozen=True)
class Build:
    """A file a row needs that the check makes first: `argv` after `python -m edgevision`."""

    output: Path
    argv: tuple[str, ...]
    needs: tuple[str, ...]  # requirement names (REQUIREMENTS)


@dataclass(frozen=True)
class Plan:
    """One row: the file, the backend and its options, the requirements, what to build first."""

    name: str
    backend: str
    model: Path
    options: dict
    needs: tuple[str, ...]
    inputs: tuple[Path, ...]  # files of the artifacts it starts from
    references: tuple[Path, ...] = ()  # reference sets to replay, the first that exists (else the model's own)
    builds: tuple[Build, ...] = ()


@dataclass
class Result:
    """A row of the table. status: ok, failed, skipped or dry run; verify: passed, FAILED or
    unverified (not run, or no reference set)."""

    name: str
    backend: str
    model: str
    status: str = "skipped"
    reason: str = ""
    verify: str = "unverified"
    verify_line: str = ""
    precision: str = ""
    provider: str = ""
    top1: float | None = None
    images: int = 0
    load_s: float | None = None
    latency_ms: dict = field(default_factory=dict)  # "1" -> {"first", "p50", "p99", "calls"}


# --- requirements: each returns None when met, else why not, in one line; nothing heavy imported at module load


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return ""


def need_runtime() -> str | None:
    """numpy; OpenCV is needed only to read the images top-1 is scored on (the row says so without it)."""
    return None if importlib.util.find_spec("numpy") else "numpy is not installed"


def need_torch_cuda() -> str | None:
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed"
    import torch

    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build"
    if not torch.cuda.is_available():
        return f"torch {torch.__version__} finds no CUDA GPU"
    return None


def _ort_provider(provider: str) -> str | None:
    if importlib.util.find_spec("onnxruntime") is None:
        return "onnxruntime is not installed (pip install edgevision[gpu])"
    import onnxruntime

    if provider not in onnxruntime.get_available_providers():
        gpu = _version("onnxruntime-gpu")
        build = f"onnxruntime-gpu {gpu}" if gpu else f"onnxruntime {onnxruntime.__version__} (the CPU build)"
        return f"{build} has no {provider}" + ("" if gpu else "; install onnxruntime-gpu: the gpu extra")
    return None


def need_ort_cuda() -> str | None:
    return _ort_provider("CUDAExecutionProvider")


def need_ort_tensorrt() -> str | None:
    return _ort_provider("TensorrtExecutionProvider")


def need_tensorrt() -> str | None:
    if importlib.util.find_spec("tensorrt") is None:
        return "TensorRT is not installed (pip install edgevision[tensorrt], or JetPack's)"
    try:
        importlib.import_module("deploy.export.onnx2trt")
    except Exception as exc:  # any reason the builder cannot load is the skip's reason
        return f"the ONNX -> TensorRT builder does not import: {type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
    return None


def need_quantizer() -> str | None:
    missing = [name for name in ("torch", "onnx", "onnxruntime") if importlib.util.find_spec(name) is None]
    return f"making the fp16 / int8 ONNX needs {', '.join(missing)} (the export extra)" if missing else None


REQUIREMENTS = {
    "runtime": need_runtime, "torch-cuda": need_torch_cuda, "ort-cuda": need_ort_cuda,
    "ort-tensorrt": need_ort_tensorrt, "tensorrt": need_tensorrt, "quantizer": need_quantizer,
}


def gpu_present() -> str | None:
    """The GPU this machine has (nvidia-smi's first line), or None."""
    if shutil.which("nvidia-smi"):
        try:
            done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
            first = next((line for line in done.stdout.splitlines() if line.startswith("GPU")), None)
            if first:
                return first.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    if need_torch_cuda() is None:
        import torch

        return f"GPU 0: {torch.cuda.get_device_name(0)}"
    return None


# --- the plan


def plan_rows(artifacts: Artifacts, out: Path, data: str, fp16_onnx: Path | None = None,
              int8_onnx: Path | None = None) -> list[Plan]:
    """Every row the check knows, with what each needs and builds. The fp16 and Q/DQ int8 ONNX are
    `fp16_onnx` / `int8_onnx` when given (made on a desktop, say, for a Jetson without torch), else
    made into `out` from the checkpoint with `edgevision quantize`."""
    onnx_ref = Path(f"{artifacts.onnx}.ref.npz")
    targets = {"fp16": "onnx-fp16", "int8": "onnx-int8-trt"}
    given = {"fp32": artifacts.onnx, "fp16": fp16_onnx, "int8": int8_onnx}
    rows = []
    for precision in ("fp32", "fp16", "int8"):
        source = given[precision] or out / f"model.{targets[precision].removeprefix('onnx-')}.onnx"
        engine = out / f"model.{precision}.engine"
        builds, starts = [], (source,)
        if given[precision] is None:
            builds.append(Build(source, ("quantize", "--model", str(artifacts.checkpoint), "--data", data, "--to",
                                         targets[precision], "--out", str(source)), ("quantizer",)))
            starts = (artifacts.checkpoint,)
        builds.append(Build(engine, ("export", "--model", str(source), "--format", "tensorrt", "--out", str(engine)),
                            ("tensorrt",)))
        references = (Path(f"{engine}.ref.npz"), Path(f"{source}.ref.npz"))
        rows.append(Plan(f"TensorRT {precision} engine", "tensorrt", engine, {}, ("runtime", "tensorrt"), starts,
                         references, tuple(builds)))
    for provider, needs in (("cuda", "ort-cuda"), ("tensorrt", "ort-tensorrt")):
        rows.append(Plan(f"onnxruntime {'CUDA' if provider == 'cuda' else 'TensorRT'} provider fp32", "onnxruntime",
                         artifacts.onnx, {"provider": provider}, ("runtime", needs), (artifacts.onnx,), (onnx_ref,)))
    for precision in ("fp32", "fp16", "bf16"):
        rows.append(Plan(f"PyTorch CUDA eager {precision}", "torch", artifacts.checkpoint,
                         {"provider": "cuda", "precision": precision}, ("runtime", "torch-cuda"),
                         (artifacts.checkpoint, artifacts.onnx), (onnx_ref,)))
    return rows


def pending_builds(plan: Plan) -> tuple[Build, ...]:
    """The builds still to run: those after the last whose output exists already."""
    made = [index for index, step in enumerate(plan.builds) if step.output.is_file()]
    return plan.builds[made[-1] + 1:] if made else plan.builds


def why_skipped(plan: Plan, met: dict[str, str | None]) -> str | None:
    """The first reason `plan` cannot run here, or None."""
    pending = pending_builds(plan)
    for name in [*(need for step in pending for need in step.needs), *plan.needs]:
        if met[name]:
            return met[name]
    starts = plan.inputs if pending == plan.builds else ()  # a file already made is where it starts
    missing = next((path for path in starts if not path.is_file()), None)
    if missing is not None:
        return f"no {missing} (run `make demo` first, or pass --artifacts DIR)"
    return None


# --- running one row, in a process of its own


def _latency(classifier, batch: int, seconds: float, min_calls: int = 20) -> dict:
    import numpy as np

    from deploy.timing import LatencyStats

    spec = classifier.card.preprocessing
    height, width = spec.input_size
    feed = np.random.default_rng(0).standard_normal((batch, spec.channels, height, width)).astype(np.float32)
    start = time.perf_counter()
    classifier.backend.run(feed)
    first = time.perf_counter() - start
    durations: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(durations) < min_calls or time.perf_counter() < deadline:
        t0 = time.perf_counter()
        classifier.backend.run(feed)
        durations.append(time.perf_counter() - t0)
        if len(durations) >= 100_000:
            break
    stats = LatencyStats.from_samples(durations)
    return {"first": round(1000 * first, 4), "p50": round(stats.p50_ms, 4), "p99": round(stats.p99_ms, 4),
            "calls": len(durations)}


def labelled_images(folder: Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """(image, class index) for every image of a class-folder tree, and the class names."""
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    items = [(image, index) for index, name in enumerate(classes)
             for image in sorted((folder / name).iterdir()) if image.suffix.lower() in (".png", ".jpg", ".jpeg")]
    return items, classes


def run_row(plan: Plan, batches: tuple[int, ...], seconds: float, images: Path) -> Result:
    """Load, time each batch size, replay the reference set and score top-1; errors become the row's reason."""
    import warnings

    import deploy
    from benchmarks.worker import score
    from deploy.errors import EdgevisionError
    from deploy.verify import reference_of, verify

    result = Result(plan.name, plan.backend, str(plan.model))
    try:
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            classifier = deploy.load(plan.model, backend=plan.backend, **plan.options)
        result.load_s = round(time.perf_counter() - start, 3)
        result.precision = classifier.info.get("precision", "")
        result.provider = str(classifier.info.get("provider", ""))
        for batch in batches:
            limit = classifier.max_batch
            if limit is not None and batch > limit:
                result.latency_ms[str(batch)] = {"skipped": f"the model's input takes batch {limit}"}
                continue
            result.latency_ms[str(batch)] = _latency(classifier, batch, seconds)
        try:
            reference = reference_of(plan.model, classifier, next((p for p in plan.references if p.is_file()), None))
        except EdgevisionError as exc:
            result.verify_line = str(exc)
        else:
            outcome = verify(classifier, reference)
            result.verify, result.verify_line = ("passed" if outcome.passed else "FAILED"), outcome.line()
        items, classes = labelled_images(images)
        result.status = "ok"
        if items:
            try:
                scores = score(classifier, items, classes)
            except EdgevisionError as exc:  # no OpenCV to read the images: timed and verified all the same
                result.reason = f"top-1 not scored: {exc}"
            else:
                result.top1, result.images = scores.top1, len(items)
    except Exception as exc:  # the row's reason, the other rows go on
        result.status = "failed"
        result.reason = str(exc) if isinstance(exc, EdgevisionError) else f"{type(exc).__name__}: {exc}"
        result.reason = result.reason.splitlines()[0][:300] if result.reason else type(exc).__name__
    return result


def run_row_in_process(plan: Plan, batches: tuple[int, ...], seconds: float, images: Path) -> Result:
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        try:
            return pool.submit(run_row, plan, batches, seconds, images).result(timeout=ROW_TIMEOUT_S)
        except Exception as exc:  # a crashed or hung process
            first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
            return Result(plan.name, plan.backend, str(plan.model), "failed",
                          f"its process: {type(exc).__name__}: {first}")


def build(step: Build) -> str | None:
    """Make `step.output` with `python -m edgevision ...` unless it exists; why not, in one line, or None."""
    if step.output.is_file():
        return None
    step.output.parent.mkdir(parents=True, exist_ok=True)
    try:
        done = subprocess.run([sys.executable, "-m", "edgevision", *step.argv], capture_output=True, text=True,
                              timeout=BUILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"`edgevision {step.argv[0]}` ran over {BUILD_TIMEOUT_S:.0f} s"
    if done.returncode != 0 or not step.output.is_file():
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else done.returncode
        return f"`edgevision {' '.join(step.argv[:1])} ... {step.output.name}` failed: {reason}"
    return None


# --- the table


def _cell(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}g}"


def table(results: list[Result], batches: tuple[int, ...]) -> Table:
    header = ["row", "precision", "verify", "top-1 %", "load s"]
    for batch in batches:
        header += [f"b{batch} first ms", f"b{batch} p50 ms", f"b{batch} p99 ms"]
    header.append("status")
    rows = []
    for r in results:
        cells = [r.name, r.precision or "-", r.verify,
                 f"{100 * r.top1:.2f} ({r.images})" if r.top1 is not None else "-", _cell(r.load_s)]
        for batch in batches:
            lat = r.latency_ms.get(str(batch), {})
            cells += [_cell(lat.get("first")), _cell(lat.get("p50")), _cell(lat.get("p99"))]
        cells.append(r.status + (f": {r.reason}" if r.reason else ""))
        rows.append(Line(cells))
    return Table(header, rows)


def versions() -> dict[str, str]:
    names = ("numpy", "opencv-python-headless", "opencv-python", "torch", "onnxruntime", "onnxruntime-gpu", "tensorrt")
    return {name: _version(name) for name in names if _version(name)}


def markdown(results: list[Result], batches: tuple[int, ...], gpu: str | None, dry: bool, command: str) -> str:
    notes = [f"GPU: {gpu or 'none found'}; " + ", ".join(f"{k} {v}" for k, v in versions().items()),
             f"command: {command}"]
    if dry:
        notes.append("DRY RUN: nothing was run; each row says why it would be skipped, or what it would run.")
    notes.append("verify: the reference set stored with the model replayed here (deploy.verify; a torch row at fp16 "
                 "or bf16 is judged at that precision); unverified: not run, or no reference set. first: the first "
                 "call after loading; p50 / p99 over the calls that followed, random input of the model's size.")
    return to_markdown([Heading("GPU check"), table(results, batches), *notes])


# --- the command


def build_parser() -> argparse.ArgumentParser:
    from benchmarks.options import positive_float
    from deploy.cli_util import CommandParser

    parser = CommandParser(
        prog="python -m benchmarks.gpu_check",
        description="TensorRT engines (fp32, fp16, int8), onnxruntime-gpu's CUDA and TensorRT providers and PyTorch "
                    "CUDA eager (fp32, fp16, bf16) on make demo's model: verify, top-1 and latency in one table. "
                    "Runs what is installed, names what it skips; a dry run without a GPU.",
        examples=["python -m benchmarks.gpu_check",
                  "python -m benchmarks.gpu_check --artifacts runs/demo --out runs/gpu-check",
                  "python -m benchmarks.gpu_check --dry-run"],
    )
    parser.add_argument("--artifacts", type=Path, default=DEFAULT_ARTIFACTS,
                        help="folder `make demo` wrote: train/model.pt, train/model.onnx, digits_test/ "
                        "(default runs/demo)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help="folder for built engines and ONNX files, gpu_check.md and gpu_check.json "
                        "(default runs/gpu-check)")
    parser.add_argument("--data", default="digits",
                        help="calibration / guard data for the fp16 and int8 ONNX (a --data spec; default digits)")
    parser.add_argument("--fp16-onnx", type=Path,
                        help="fp16 ONNX for the fp16 engine (default: made into --out with edgevision quantize "
                        "--to onnx-fp16)")
    parser.add_argument("--int8-onnx", type=Path,
                        help="TensorRT-form Q/DQ int8 ONNX for the int8 engine (default: made into --out with "
                        "edgevision quantize --to onnx-int8-trt)")
    parser.add_argument("--seconds", type=positive_float(3600.0), default=3.0,
                        help="timed seconds per row and batch size (default 3)")
    parser.add_argument("--only", help="run only rows whose name contains this text (e.g. PyTorch)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and the skips, run nothing")
    return parser


@dataclass(frozen=True)
class CheckSpec:
    """What one gpu-check runs (the command's options): `make demo`'s `artifacts`, the `out` folder,
    the `data` spec for the fp16/int8 ONNX, ONNX files given instead of made, seconds per row, a
    name filter (`only`), a dry run; `argv`, the command line, goes into the report."""

    artifacts: Path = DEFAULT_ARTIFACTS
    out: Path = DEFAULT_OUT
    data: str = "digits"
    fp16_onnx: Path | None = None
    int8_onnx: Path | None = None
    seconds: float = 3.0
    only: str | None = None
    dry_run: bool = False
    argv: tuple[str, ...] = ()


def check(spec: CheckSpec) -> int:
    from deploy.atomic import write_text_atomic

    argv = spec.argv
    gpu = gpu_present()
    dry = spec.dry_run or gpu is None
    met = {name: need() for name, need in REQUIREMENTS.items()}
    plans = [p for p in plan_rows(Artifacts.under(spec.artifacts), spec.out, spec.data, spec.fp16_onnx, spec.int8_onnx)
             if not spec.only or spec.only.lower() in p.name.lower()]
    results = []
    print(f"gpu-check: {gpu or 'no NVIDIA GPU found'}" + ("; dry run: nothing is run" if dry else ""), flush=True)
    for plan in plans:
        reason = why_skipped(plan, met)
        if reason is None and gpu is None:
            reason = "no NVIDIA GPU here"
        if reason:
            results.append(Result(plan.name, plan.backend, str(plan.model), "skipped", reason))
            print(f"  {plan.name}: skipped: {reason}", flush=True)
            continue
        if dry:
            steps = [f"edgevision {' '.join(b.argv)}" for b in pending_builds(plan)]
            what = "; then ".join([*steps, f"load {plan.model} ({plan.backend}, {plan.options or 'defaults'})"])
            results.append(Result(plan.name, plan.backend, str(plan.model), "dry run", f"would run: {what}"))
            print(f"  {plan.name}: would run: {what}", flush=True)
            continue
        failed = next((why for step in pending_builds(plan) if (why := build(step))), None)
        if failed:
            results.append(Result(plan.name, plan.backend, str(plan.model), "skipped", failed))
            print(f"  {plan.name}: skipped: {failed}", flush=True)
            continue
        result = run_row_in_process(plan, BATCHES, spec.seconds, Artifacts.under(spec.artifacts).images)
        results.append(result)
        print(f"  {plan.name}: {result.status} {result.reason or result.verify_line}", flush=True)
    command = " ".join(["python -m benchmarks.gpu_check", *argv])
    text = markdown(results, BATCHES, gpu, dry, command)
    print(text)
    spec.out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(spec.out / "gpu_check.md", text + "\n")
    write_text_atomic(spec.out / "gpu_check.json", json.dumps(
        {"gpu": gpu, "dry_run": dry, "command": command, "versions": versions(),
         "rows": [asdict(r) for r in results]}, indent=1) + "\n")
    print(f"written: {spec.out / 'gpu_check.md'}, {spec.out / 'gpu_check.json'}")
    if dry:
        return 0
    return 1 if any(r.status == "failed" or r.verify == "FAILED" for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    from deploy.cli_util import run_cli

    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    spec = CheckSpec(artifacts=args.artifacts, out=args.out, data=args.data, fp16_onnx=args.fp16_onnx,
                     int8_onnx=args.int8_onnx, seconds=args.seconds, only=args.only, dry_run=args.dry_run,
                     argv=tuple(argv))
    return run_cli(lambda: check(spec), "gpu-check", verbose=args.verbose)


if __name__ == "__main__":
    # Through the module's own name, so that the rows' processes unpickle benchmarks.gpu_check's classes.
    from benchmarks.gpu_check import main as gpu_check_main

    sys.exit(gpu_check_main())
