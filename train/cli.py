"""`edgevision train | eval`: argument parsing only; the work is in fit and evaluate."""

from __future__ import annotations

import argparse
import json

from deploy.cli_util import CommandParser, Subcommand, run_subcommand
from deploy.errors import EdgevisionError
from train.catalog import ARCHITECTURES, POLICIES
from train.data_root import HELP as DATA_ROOT_HELP
from train.lessons import LESSON_RECIPES


def _json_dict(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object, e.g. '{\"width\": 64}'")
    return value


def build_train_parser() -> CommandParser:
    """`edgevision train`; options left out come from the recipe for the model (train/recipes.py)."""
    from deploy.data_spec import SPEC_FORMS

    parser = CommandParser(
        prog="edgevision train",
        description="Train an image classifier from scratch or by transfer learning.",
        examples=[
            "edgevision train --data digits --model cnn --epochs 3 --out runs/digits",
            "edgevision train --init runs/digits/model.pt --data digits --epochs 1 --out runs/digits-more",
            "edgevision train --recipe mnist-cnn --data-root ../shared/data --out runs/mnist-cnn",
        ],
    )
    lessons = parser.add_argument_group("lesson recipes (docs/recipes.md)")
    lessons.add_argument("--recipe", choices=tuple(LESSON_RECIPES), metavar="NAME",
                         help="a lesson's data, model and settings (options given here override it): "
                         f"{', '.join(LESSON_RECIPES)}")
    lessons.add_argument("--list-recipes", action="store_true", help="list the recipes and what each lesson reported")
    data = parser.add_argument_group("data")
    data.add_argument("--data",
                      help=f"what to train on: {', '.join(SPEC_FORMS)} (PATH: a class-folder tree, as folder:PATH)")
    data.add_argument("--data-root", metavar="DIR", help=DATA_ROOT_HELP)
    data.add_argument("--augment", choices=POLICIES, help="augmentation policy (default: suits the data)")
    data.add_argument("--input-size", type=int, help="network input side in pixels (default: per model)")
    data.add_argument("--workers", type=int, help="data loading processes (default: 0 in memory, 1 for files)")
    data.add_argument("--threads", type=int, help="CPU threads for torch (default: 1 for lesson models, else all)")

    model = parser.add_argument_group("model")
    model.add_argument("--model", help=f"architecture: {', '.join(sorted(ARCHITECTURES))}")
    model.add_argument("--weights", help="DEFAULT (torchvision ImageNet weights) or a state_dict file")
    model.add_argument("--init", metavar="MODEL.pt",
                       help="fine-tune a checkpoint of edgevision train: its architecture, preprocessing, classes "
                       "and weights (fresh optimizer and schedule; the data's classes must be its classes)")
    model.add_argument("--model-options", type=_json_dict, default={}, help="JSON options for the builder")
    model.add_argument("--freeze", choices=("none", "backbone"), default="none", help="train only the head")
    model.add_argument("--backbone-lr-scale", type=float, default=1.0, help="backbone lr = lr x this")
    model.add_argument("--schedule", choices=("cosine", "two-phase"), default="cosine",
                       help="two-phase: --head-epochs with the backbone frozen, then everything")
    model.add_argument("--head-epochs", type=int, default=2, help="head-only epochs of --schedule two-phase")

    opt = parser.add_argument_group("optimisation (defaults from the model's recipe)")
    opt.add_argument("--epochs", type=int, help="passes over the training split")
    opt.add_argument("--batch-size", type=int, help="images per optimisation step")
    opt.add_argument("--lr", type=float, help="peak learning rate (after warm-up; cosine decay)")
    opt.add_argument("--optimizer", choices=("adamw", "sgd"), help="AdamW or SGD with momentum")
    opt.add_argument("--weight-decay", type=float, help="L2 penalty of the optimizer")
    opt.add_argument("--warmup-epochs", type=float, help="epochs of linear warm-up to the peak --lr")
    opt.add_argument("--label-smoothing", type=float, help="cross-entropy label smoothing (0: none)")
    opt.add_argument("--patience", type=int, help="stop after this many epochs without a better val top1")

    run = parser.add_argument_group("run")
    run.add_argument("--out", default="runs/train", help="output folder (default: runs/train)")
    run.add_argument("--resume", action="store_true", help="continue from OUT/last.pt with its saved options")
    run.add_argument("--overwrite", action="store_true", help="replace the run already in OUT (kept otherwise)")
    run.add_argument("--seed", type=int, default=0, help="seed of the data split and the weights (default 0)")
    run.add_argument("--device", default="auto", help="auto, cpu or cuda")
    run.add_argument("--amp", choices=("off", "bf16", "fp16"), default="bf16", help="mixed precision (CUDA only)")
    run.add_argument("--quiet", action="store_true", help="print nothing but errors (outputs are still written)")
    return parser


def build_eval_parser() -> CommandParser:
    parser = CommandParser(
        prog="edgevision eval",
        description="Evaluate a checkpoint with the preprocessing on its card: eval_metrics.json (with the "
        "confusion matrix), eval_confusion.png and eval_wrong.png (the most confidently wrong images).",
        examples=[
            "edgevision eval --model runs/demo/train/model.pt",
            "edgevision eval --model runs/demo/train/model.pruned.pt --data digits --split val --out runs/eval",
        ],
    )
    parser.add_argument("--model", required=True, help="a model.pt written by edgevision train")
    parser.add_argument("--data", help="data to score: digits, mnist, fashion-mnist, cifar10, folder:PATH, idx:DIR "
                        "or a class-folder PATH (default: the one on the card)")
    parser.add_argument("--data-root", metavar="DIR", help=DATA_ROOT_HELP)
    parser.add_argument("--split", choices=("test", "val", "all"), default="test",
                        help="which split of --data to score, drawn as training drew it (default test)")
    parser.add_argument("--out", help="folder for eval_metrics.json, eval_confusion.png and eval_wrong.png "
                        "(default: beside the checkpoint)")
    parser.add_argument("--wrong", type=int, default=16, metavar="N",
                        help="draw the N most confidently wrong images into eval_wrong.png (default 16; 0: none)")
    parser.add_argument("--batch-size", type=int, default=128, help="images per forward pass (default 128)")
    parser.add_argument("--seed", type=int,
                        help="split seed (default: the one the model was trained with, from its card)")
    parser.add_argument("--allow-other-split", action="store_true",
                        help="score with a --seed other than training's (its test split then holds training images)")
    return parser


def parse_train_args(argv: list[str]) -> argparse.Namespace:
    """The train options; with `--recipe NAME` the recipe's values become the defaults, so that
    every option given on the command line overrides the recipe."""
    parser = build_train_parser()
    args = parser.parse_args(argv)
    if args.recipe:
        parser.set_defaults(**LESSON_RECIPES[args.recipe].defaults())
        args = parser.parse_args(argv)
    return args


def train_command(args: argparse.Namespace) -> int:
    if args.list_recipes:
        from train.lessons import recipes_table

        print(recipes_table())
        return 0
    if args.recipe and not args.data and not args.resume:
        from train.data_root import data_root
        from train.lessons import recipe_data

        args.data = recipe_data(LESSON_RECIPES[args.recipe], data_root(args.data_root))

    from train.config import TrainConfig
    from train.fit import fit

    if args.resume and args.init:
        raise EdgevisionError("--resume continues OUT/last.pt; --init starts a new run from a checkpoint: give one")
    if not args.resume and (not args.data or not (args.model or args.init)):
        raise EdgevisionError("--data and --model (or --init) are required (unless --resume)")
    options = vars(args).copy()
    resume = options.pop("resume")
    overwrite = options.pop("overwrite")
    for name in ("verbose", "recipe", "list_recipes"):
        options.pop(name)
    config = TrainConfig(**{k: v for k, v in options.items() if k not in ("model_options",)},
                         model_options=args.model_options)
    fit(config, resume=resume, overwrite=overwrite)
    return 0


def eval_command(args: argparse.Namespace) -> int:
    from train.evaluate import evaluate_checkpoint

    evaluate_checkpoint(args.model, args.data, args.split, args.out, args.data_root, args.batch_size, args.seed,
                        args.allow_other_split, args.wrong)
    return 0


COMMANDS = {
    "train": Subcommand(build_train_parser, train_command, parse=lambda parser, options: parse_train_args(options)),
    "eval": Subcommand(build_eval_parser, eval_command),
}


def main(argv: list[str] | None = None) -> int:
    """`[train|eval, *options]`, as `edgevision` passes it (`deploy.cli_util.run_subcommand`)."""
    return run_subcommand(argv, COMMANDS)
