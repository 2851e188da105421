"""A whole training run: data, model, epochs with early stopping, checkpoints, final evaluation.

`fit(config)` is what `edgevision train` calls. The loop trains a "trainee": the full model, or,
with a frozen backbone and no augmentation, only its head on features computed once
(`train.features`). Either way `model.pt` and `last.pt` hold the full model.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from deploy.atomic import output_lock
from deploy.card import ModelCard
from deploy.errors import EdgevisionError
from deploy.preprocess import Preprocessing
from train import ddp
from train.checkpoint import load_checkpoint, load_model, save_checkpoint
from train.config import TrainConfig, check_options, frozen_backbone_warning, resolve
from train.data import DataSplits, dataset_info, load_data, portable_spec
from train.engine import EvalResult, Schedule, build_optimizer, evaluate_loader, train_one_epoch
from train.features import cache_features, freeze_all_but
from train.init import apply_init, check_classes, check_init, init_card
from train.loaders import make_loader, set_epoch
from train.models import backbone_and_head, build_model, parameter_groups
from train.recipes import default_preprocessing
from train.report import format_summary, plot_confusion, write_json
from train.transforms import eval_transform, train_transform

logger = logging.getLogger("edgevision.train")


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM (a scheduler or `kill`) stops the run like Ctrl-C: cleanly, with last.pt intact."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def log(info: ddp.Distributed, config: TrainConfig, message: str) -> None:
    if info.is_main and not config.quiet:
        logger.info(message)


@dataclass
class Run:
    """Everything the epoch loop works on."""

    model: nn.Module
    trainee: nn.Module
    train_loader: torch.utils.data.DataLoader
    val_loader: torch.utils.data.DataLoader
    card: ModelCard
    frozen_features: bool
    start: dict | None = None  # with --init: how the starting model scores on this run's val split


def start_model(path: str | os.PathLike, data: DataSplits) -> tuple[nn.Module, Preprocessing]:
    """The network and preprocessing of an `--init` checkpoint, for data with the same classes."""
    card = init_card(path)
    check_classes(card, list(data.class_names), path)
    model, _ = load_model(path)
    return model.train(), card.preprocessing


def prepare(config: TrainConfig, data: DataSplits, info: ddp.Distributed, initial: Path | None = None) -> Run:
    """Build the model, its card and the loaders (images, or cached backbone features).

    initial: where an `--init` run's network comes from when it is not `config.init` (a resumed
    run's last.pt, so that resuming does not need the original checkpoint any more)."""
    if config.init:
        model, prep = start_model(initial or config.init, data)
        model = model.to(info.device)
    else:
        prep = default_preprocessing(config.model, data, bool(config.weights), config.input_size)
        model = build_model(
            config.model, len(data.class_names), prep.channels, prep.input_size, config.weights, **config.model_options
        ).to(info.device)
    if not config.weights and not config.init:
        # torchvision's MobileNetV3/EfficientNet keep BatchNorm running stats with momentum 0.01,
        # tuned for ImageNet's 1,000s of steps per epoch; from scratch on a small set the stats
        # lag so far behind that eval-mode accuracy sat at chance for 19 epochs on digits.
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.momentum = 0.1
    card = ModelCard(
        architecture=config.model,
        class_names=list(data.class_names),
        preprocessing=prep,
        model_options=dict(config.model_options),
        dataset=portable_spec(data.spec),
        dataset_info=dataset_info(data, config.seed),
    )
    workers = config.workers if config.workers is not None else (0 if data.in_memory else 1)
    evaluation = eval_transform(prep)
    loader_args = dict(seed=config.seed, workers=workers, precomputable=data.in_memory)
    val_loader = make_loader(data.val, evaluation, config.batch_size, False, **loader_args)
    frozen_features = config.freeze == "backbone" and config.augment == "none"
    if frozen_features:
        backbone, head = backbone_and_head(model, config.model)
        freeze_all_but(model, list(head.parameters()))
        train_images = make_loader(data.train, evaluation, config.batch_size, False, **loader_args)
        log(info, config, f"computing backbone features once ({len(data.train)} + {len(data.val)} images)")
        train_set = cache_features(backbone, train_images, info.device, config.amp, config.quiet, "train features")
        val_set = cache_features(backbone, val_loader, info.device, config.amp, config.quiet, "val features")
        del backbone
        generator_seed = dict(seed=config.seed, distributed=info.enabled)
        train_loader = make_loader(train_set, None, config.batch_size, True, **generator_seed)
        val_loader = make_loader(val_set, None, config.batch_size, False, seed=config.seed)
        return Run(model, head, train_loader, val_loader, card, True)
    augmenting = train_transform(prep, config.augment)
    train_loader = make_loader(
        data.train,
        augmenting,
        config.batch_size,
        True,
        seed=config.seed,
        workers=workers,
        distributed=info.enabled,
        precomputable=data.in_memory and config.augment == "none",
    )
    return Run(model, model, train_loader, val_loader, card, False)


def make_optimizer(config: TrainConfig, run: Run) -> torch.optim.Optimizer:
    if run.frozen_features:
        groups = [{"params": list(run.trainee.parameters())}]
    else:
        backbone, head = parameter_groups(run.model, config.model)
        groups = [{"params": backbone, "lr_scale": config.backbone_lr_scale}, {"params": head}]
    return build_optimizer(groups, config.optimizer, config.lr, config.weight_decay)


def head_only(config: TrainConfig, epoch: int) -> bool:
    return config.freeze == "backbone" or (config.schedule == "two-phase" and epoch < config.head_epochs)


def cpu_threads(config: TrainConfig, info: ddp.Distributed) -> int:
    """--threads; else 1 for lesson models (ops too small to split); else the cores not busy.

    Intra-op threads wait on each other, so a thread on a core that another process holds
    stalls every op: on 2 shared cores MobileNetV3 trained 25x slower with 2 threads than with 1.
    """
    if config.threads:
        return config.threads
    if config.recipe == "lesson":
        return 1
    cores = max(1, (os.cpu_count() or 1) // info.world_size)
    busy = round(os.getloadavg()[0] / info.world_size) if hasattr(os, "getloadavg") else 0
    return max(1, min(cores, cores - busy))


def rng_state(loader: torch.utils.data.DataLoader) -> dict:
    return {"torch": torch.get_rng_state(), "loader": loader.generator.get_state()}


RUN_OUTPUTS = ("model.pt", "last.pt", "metrics.json", "config.json", "confusion.png")


def check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """A finished or started run in `out` is kept unless the user says --resume or --overwrite;
    with --overwrite its outputs are removed first, so the folder never mixes two runs."""
    existing = [name for name in RUN_OUTPUTS if (out / name).exists()]
    if resume:
        if not (out / "last.pt").is_file():
            raise EdgevisionError(f"--resume: {out / 'last.pt'} not found (nothing to resume)")
        return
    if existing and not overwrite:
        raise EdgevisionError(f"{out} already holds a training run ({', '.join(existing)}); "
                              "pass --resume to continue it, --overwrite to replace it, or another --out")
    for name in existing:
        (out / name).unlink()


def fit(config: TrainConfig, resume: bool = False, overwrite: bool = False) -> dict:
    """Train as `config` says (resuming from `out/last.pt` when asked); returns the metrics.

    The output folder is locked for the run: a second process training into it is refused.
    """
    start = time.time()
    check_options(config)
    info = ddp.setup(config.device)
    out = Path(config.out)
    try:
        with output_lock(out, "--out") if info.is_main else nullcontext():
            if info.is_main:
                if config.init and not resume:
                    check_init(config.init, out, RUN_OUTPUTS)
                check_run_folder(out, resume, overwrite)
            return _fit(config, resume, info, out, start)
    finally:
        ddp.teardown(info)


def _fit(config: TrainConfig, resume: bool, info: ddp.Distributed, out: Path, start: float) -> dict:
    state = None
    if resume:
        state = load_checkpoint(out / "last.pt")
        saved = TrainConfig.from_dict(state["config"])
        saved.epochs = config.epochs or saved.epochs
        saved.quiet, saved.device = config.quiet, config.device
        saved.workers, saved.threads = config.workers, config.threads
        config = saved
    initial = out / "last.pt" if resume and config.init else None  # a resumed --init run needs no other file
    if config.init:
        config = apply_init(config, init_card(initial or config.init))
    data = load_data(config.data, config.data_root, config.seed)
    config = resolve(config, data.augment)
    warning = frozen_backbone_warning(config)
    if warning and info.is_main:
        logger.warning(warning)
    if info.device.type == "cpu":
        torch.set_num_threads(cpu_threads(config, info))
    torch.manual_seed(config.seed)
    run = prepare(config, data, info, initial)
    log(info, config, f"{config.model} on {data.spec}: {len(data.train)} train / {len(data.val)} val images, "
        f"recipe {config.recipe}, {config.epochs} epochs, input {run.card.preprocessing.input_size}")
    with sigterm_as_interrupt():
        history, best_epoch = train_loop(config, run, info, out, state)
    return finish(config, run, data, info, out, history, best_epoch, time.time() - start)


def train_loop(config: TrainConfig, run: Run, info: ddp.Distributed, out: Path, state: dict | None):
    optimizer = make_optimizer(config, run)
    steps = len(run.train_loader)
    schedule = Schedule(config.epochs * steps, round(config.warmup_epochs * steps))
    loss_fn = nn.CrossEntropyLoss(label_smoothing=config.label_smoothing)
    scaler = torch.amp.GradScaler("cuda") if info.device.type == "cuda" and config.amp == "fp16" else None
    first_epoch, best_top1, best_epoch, history = 0, -1.0, -1, []
    if state is not None:
        run.model.load_state_dict(state["state_dict"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.step = int(state["schedule"]["step"])
        first_epoch, best_top1 = int(state["epoch"]), float(state["best_top1"])
        best_epoch, history = int(state["best_epoch"]), list(state["history"])
        torch.set_rng_state(state["rng"]["torch"])
        run.train_loader.generator.set_state(state["rng"]["loader"])
        log(info, config, f"resuming after epoch {first_epoch} (best val top1 {best_top1:.4f})")
    if state is None and config.init:
        val = evaluate_loader(run.trainee, run.val_loader, run.card.num_classes, info.device, config.amp, quiet=True)
        run.start = {"checkpoint": Path(config.init).name, "val_loss": val.loss, "val_top1": val.top1}
        log(info, config, f"starting from {config.init}: val loss {val.loss:.4f} top1 {val.top1:.4f}")
    stale = 0 if best_epoch < 0 else first_epoch - 1 - best_epoch
    phase, trainee = None, None
    for epoch in range(first_epoch, config.epochs):
        if config.patience and stale >= config.patience:
            log(info, config, f"early stop: val top1 has not improved for {stale} epochs")
            break
        # Freezing changes which parameters DDP must synchronise, so each phase wraps anew.
        if trainee is None or head_only(config, epoch) != phase:
            phase = head_only(config, epoch)
            if not run.frozen_features:
                backbone, head = parameter_groups(run.model, config.model)
                freeze_all_but(run.model, head if phase else backbone + head)
            trainee = ddp.wrap(run.trainee, info)
        set_epoch(run.train_loader, epoch)
        tic = time.time()
        train_stats = train_one_epoch(
            trainee, run.train_loader, loss_fn, optimizer, schedule, info.device, config.amp, scaler,
            quiet=config.quiet or not info.is_main, desc=f"epoch {epoch + 1}/{config.epochs}",
            bn_eval=phase and not run.frozen_features,
        )
        val = evaluate_loader(run.trainee, run.val_loader, len(run.card.class_names), info.device, config.amp,
                              quiet=True)
        record = {
            "epoch": epoch + 1,
            "train_loss": train_stats["loss"],
            "train_top1": train_stats["top1"],
            "val_loss": val.loss,
            "val_top1": val.top1,
            "val_top5": val.top5,
            "lr": optimizer.param_groups[-1]["lr"],
            "time_s": round(time.time() - tic, 3),
        }
        history.append(record)
        improved = val.top1 > best_top1
        if improved:
            best_top1, best_epoch, stale = val.top1, epoch, 0
        else:
            stale += 1
        if info.is_main:
            if improved:
                card = run.card.evolve(metrics={"val_top1": val.top1, "epoch": epoch + 1})
                save_checkpoint(out / "model.pt", card, run.model.state_dict())
            save_checkpoint(
                out / "last.pt", run.card, run.model.state_dict(),
                optimizer=optimizer.state_dict(), schedule={"step": schedule.step}, epoch=epoch + 1,
                best_top1=best_top1, best_epoch=best_epoch, history=history,
                rng=rng_state(run.train_loader), config=config.to_dict(),
            )
        log(info, config, f"epoch {epoch + 1}/{config.epochs}  train loss {record['train_loss']:.4f} "
            f"top1 {record['train_top1']:.4f}  val loss {val.loss:.4f} top1 {val.top1:.4f}"
            f"{'  *' if improved else ''}  ({record['time_s']:.1f}s)")
    ddp.barrier(info)
    return history, best_epoch


def finish(
    config: TrainConfig, run: Run, data: DataSplits, info: ddp.Distributed, out: Path,
    history: list, best_epoch: int, wall_time: float,
) -> dict:
    """Evaluate the best checkpoint on test (val when there is no test split) and write outputs."""
    if not info.is_main:
        return {}
    best = load_checkpoint(out / "model.pt")
    run.model.load_state_dict(best["state_dict"])
    split_name, split = ("test", data.test) if data.test is not None else ("val", data.val)
    loader = make_loader(split, eval_transform(run.card.preprocessing), config.batch_size, False,
                         seed=config.seed, precomputable=data.in_memory,
                         workers=config.workers if config.workers is not None else (0 if data.in_memory else 1))
    result = evaluate_loader(run.model, loader, len(data.class_names), info.device, config.amp, config.quiet)
    metrics = metrics_dict(result, data.class_names, split_name, data.spec)
    metrics.update(
        epochs=len(history), best_epoch=best_epoch + 1, wall_time_s=round(wall_time, 2), history=history,
        recipe=config.recipe, model=config.model,
    )
    if run.start is not None:
        metrics["init"] = run.start
    card = run.card.evolve(metrics={k: metrics[k] for k in ("split", "top1", "top5", "topk", "count")})
    save_checkpoint(out / "model.pt", card, run.model.state_dict())
    write_outputs(out, metrics, data.class_names, config.to_dict())
    log(info, config, format_summary(metrics) + f"\noutputs in {out}/ (model.pt, metrics.json, confusion.png)")
    return metrics


def metrics_dict(result: EvalResult, class_names: list[str], split: str, spec: str) -> dict:
    return {"split": split, "data": spec, **result.summary(class_names)}


def write_outputs(out: Path, metrics: dict, class_names: list[str], config: dict | None, prefix: str = "") -> None:
    write_json(out / f"{prefix}metrics.json", metrics)
    plot_confusion(out / f"{prefix}confusion.png", metrics["confusion"], class_names,
                   f"{metrics['split']} top1 {metrics['top1']:.2%}")
    if config is not None:
        write_json(out / "config.json", config)

