"""``karyotf train``: OD API training for exactly N steps (resumes; Ctrl-C saves a checkpoint, status 130)."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from .. import defaults as D
    from ..train import STRATEGIES
    from .config import all_models

    t = sub.add_parser(
        "train", help="train a configured model for exactly N steps (resumes; Ctrl-C saves a checkpoint)",
        description="Run OD API training in MODEL_DIR until the global step reaches --steps, with a progress bar, "
                    "TensorBoard summaries (MODEL_DIR/train) and checkpoints.  Re-running resumes from the newest "
                    "checkpoint.  SIGINT/SIGTERM finish the step, save a checkpoint and exit (status 130).  "
                    "faster_rcnn (TF1) trains in a TF1 child process.")
    t.add_argument("model", choices=all_models(), help="model to train")
    t.add_argument("--model-dir", type=Path, default=None, help="model dir from `karyotf config` (default: runs/MODEL)")
    t.add_argument("--steps", type=int, default=None,
                   help="train until this global step (a total, not an increment; default: the config's num_steps)")
    t.add_argument("--strategy", choices=STRATEGIES, default=D.STRATEGY,
                   help="tf.distribute strategy: default (one device), mirrored (all local GPUs), multi_worker "
                        "(several machines, roles from TF_CONFIG; TF2 models: ssd, rfcn; see the README), tpu "
                        "(TF2 models; --tpu names it)")
    t.add_argument("--tpu", default=None, help="TPU name or grpc:// address for --strategy tpu")
    t.add_argument("--checkpoint-every", type=int, default=D.CHECKPOINT_EVERY, help="save a checkpoint every N steps")
    t.add_argument("--keep", type=int, default=D.KEEP_CHECKPOINTS, help="checkpoints to keep")
    t.add_argument("--summary-every", type=int, default=D.SUMMARY_EVERY, help="image/graph summaries every N steps "
                   "(losses are logged every step)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_train)


def _train(args) -> int:
    from ..errors import TrainError
    from ..rundir import read_info, run_dir
    from ..train import device_text, train

    model_dir = args.model_dir if args.model_dir is not None else run_dir(args.model)
    info = read_info(model_dir)
    if info.get("model") and info["model"] != args.model:
        raise TrainError(f"{model_dir} holds a {info['model']} model, not {args.model} "
                         f"(fix: `karyotf train {info['model']} --model-dir {model_dir}`)")
    print(f"device: {device_text(args.strategy)}", flush=True)
    result = train(model_dir, args.steps, strategy=args.strategy, tpu=args.tpu,
                   checkpoint_every=args.checkpoint_every, keep=args.keep, summary_every=args.summary_every,
                   progress=not args.no_progress, verbose=getattr(args, "verbose", False))
    print(result.text())
    if result.interrupted:
        print(f"interrupted at step {result.final_step}: run `karyotf train {args.model} --model-dir {model_dir}` "
              "again to resume")
        return 130
    return 0
