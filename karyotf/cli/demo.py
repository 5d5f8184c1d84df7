"""``karyotf demo``: records -> train -> export -> eval -> karyograms on the built-in sample (see karyotf.demo)."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def register(sub) -> None:
    from .. import demo as d

    p = sub.add_parser(
        "demo", help="karyotype the built-in sample with the shipped model pair; --train: the whole pipeline in "
                     "minutes (a demo-length model, not a diagnostic one)",
        description="Without --train: the model pair shipped with karyotf karyotypes every cell of the built-in "
                    "sample (karyograms, reports, ISCN calls and review flags), beside the call from each cell's "
                    "annotation, with a summary of how many agree. With --train: build records from the sample, "
                    "train a model for a demo-length run, export it, evaluate it on the test split, and draw a "
                    "karyogram with the count call for one sample cell from the model and from its annotation, "
                    "side by side. Prints where each output is.")
    p.add_argument("--train", action="store_true",
                   help="the training walk-through (records, train, export, eval, karyogram) instead")
    p.add_argument("--out", type=Path, default=d.DEFAULT_OUT, help="output folder")
    p.add_argument("--src", type=Path, default=None, help="dataset folder (default: the built-in 32-cell sample)")
    p.add_argument("--model", default=d.DEFAULT_MODEL, help="--train: model to train")
    p.add_argument("--steps", type=int, default=d.DEFAULT_STEPS, help="training steps")
    p.add_argument("--image-size", type=int, default=d.DEFAULT_IMAGE_SIZE,
                   help="model input size in pixels")
    p.add_argument("--batch", type=int, default=d.DEFAULT_BATCH, help="batch size")
    p.add_argument("--score-threshold", type=float, default=d.DEFAULT_SCORE_THRESHOLD,
                   help="score threshold for the metrics and the model's karyogram")
    p.add_argument("--cell", default=None,
                   help="image id of the cell drawn side by side (default: an abnormal cell; --train: a test-split "
                        "cell, an abnormal one if any)")
    p.add_argument("--augment", default=",".join(d.DEFAULT_AUGMENT),
                   help="training augmentation ops, comma-separated, '' for none")
    p.add_argument("--learning-rate", type=float, default=d.DEFAULT_LEARNING_RATE,
                   help="peak learning rate (default: %(default)s; higher than the thesis's 0.0002 because the demo "
                        "trains from scratch for a few hundred steps)")
    p.add_argument("--seed", type=int, default=0, help="split seed")
    p.add_argument("--classifier-epochs", type=int, default=d.DEFAULT_CLASSIFIER_EPOCHS,
                   help="epochs of the chromosome classifier that names what a class-agnostic detector finds "
                        "(default: %(default)s; 0: a 24-class detector finds and names alone)")
    p.add_argument("--resume", action="store_true",
                   help="resume the model of an earlier demo in --out instead of training from scratch")
    p.set_defaults(func=_demo)


def _demo(args) -> int:
    import logging

    from ..demo import run_demo

    if not args.verbose:  # the OD API logs every layer it builds at INFO: keep the demo's own steps readable
        for name in ("tensorflow", "absl"):
            logging.getLogger(name).setLevel(logging.WARNING)

    if not args.train:
        from ..demo import karyotype_demo

        print(karyotype_demo(args.out, src=args.src, cell=args.cell).text())
        return 0
    result = run_demo(args.out, src=args.src, model=args.model, steps=args.steps, image_size=args.image_size,
                      batch=args.batch, score_threshold=args.score_threshold, cell=args.cell,
                      augment=[a for a in args.augment.split(",") if a.strip()],
                      learning_rate=args.learning_rate, seed=args.seed,
                      fresh=not args.resume, classifier_epochs=args.classifier_epochs)
    print(result.text())
    return 0
