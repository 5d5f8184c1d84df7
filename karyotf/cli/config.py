"""``karyotf config``: fill a model's pipeline.config template for a records dir."""
from __future__ import annotations

from pathlib import Path

# Imports inside functions, and why: the command's stage and its helpers, imported when the command runs (so that
# `karyotf --help` and every other command start without them).


def _models_help() -> str:
    from ..pipelines import MODELS

    return "; ".join([f"{m.name}: {m.description} (default {m.image_size} px, batch {m.batch}, {m.steps} steps)"
                      for m in MODELS.values()] + ["yolo: KerasCV YOLOv8 (n/s/m), config pipelines/yolo.json"])


def all_models() -> list[str]:
    """Every model `karyotf config` and `karyotf train` know: the OD API templates and yolo."""
    from ..pipelines import MODELS
    from ..yolo import MODEL as YOLO

    return [*MODELS, YOLO]


def register(sub) -> None:
    from ..pipelines import FINE_TUNE_TYPES, MODELS
    from .. import defaults as D

    p = sub.add_parser(
        "config", help="fill a model's pipeline.config template for a records dir (runs/MODEL/pipeline.config)",
        description="Fill pipelines/MODEL.config: num_classes from the label map, record and label map paths, steps, "
                    "batch, image size, learning rate, augmentation, fine-tune checkpoint; validate it with the OD "
                    "API's pipeline_pb2 and write MODEL_DIR/pipeline.config + karyotf.json.  Models: " + _models_help())
    p.add_argument("model", choices=all_models(), help="model to configure")
    p.add_argument("--records", type=Path, default=D.RECORDS_DIR,
                   help="records dir from `karyotf records`")
    p.add_argument("--out", type=Path, default=None, help="model dir to write (default: runs/MODEL)")
    p.add_argument("--steps", type=int, default=None, help="total training steps (default: the model's)")
    p.add_argument("--batch", type=int, default=None, help="batch size (default: the model's: 12 as in the thesis; 4 for rfcn, which needs >19 GB RAM at 12)")
    p.add_argument("--image-size", type=int, default=None,
                   help="input size in px: SSD resizes to SIZExSIZE, the two-stage models scale the longer side to "
                        "SIZE and pad (default: the model's, 512 ssd / 640 faster_rcnn, rfcn)")
    p.add_argument("--learning-rate", type=float, default=None,
                   help="peak learning rate of the cosine schedule (default: 0.0002, the thesis's fine-tuning rate; "
                        "ssd from scratch, without --fine-tune: 0.04)")
    p.add_argument("--augment", default=None,
                   help="comma-separated augmentation ops for training, e.g. hflip,vflip,rot90, or 'none' "
                        "(default: the template's hflip,vflip,rot90)")
    p.add_argument("--proposals", type=int, default=None,
                   help="two-stage models: first-stage proposals per image (default: the template's 300)")
    p.add_argument("--fine-tune", default=None, metavar="CHECKPOINT",
                   help="start from pretrained weights: 'coco' = the OD API model zoo's COCO checkpoint that fits "
                        "MODEL (downloaded once into $KARYOTF_CACHE, see `karyotf zoo list`; learning rate 0.0002 "
                        "unless --learning-rate), or a local checkpoint prefix: DIR/ckpt-N (TF2 models) or "
                        "DIR/model.ckpt-N (faster_rcnn)")
    p.add_argument("--fine-tune-type", choices=FINE_TUNE_TYPES, default=None,
                   help="what to restore from --fine-tune (default: coco: the zoo registry's; a local checkpoint: "
                        "detection if a pipeline.config sits beside it, else classification)")
    p.add_argument("--backbone", choices=("n", "s", "m"), default=None,
                   help="yolo only: YOLOv8 backbone size (default: pipelines/yolo.json's)")
    p.add_argument("--weights", default=None, metavar="FILE",
                   help="yolo only: start the backbone from a local Keras weights file (.h5), or preset:NAME "
                        "(a KerasCV preset, downloaded at run time); default from scratch. For yolo --fine-tune "
                        "means the same")
    p.add_argument("--agnostic", action="store_true",
                   help="a class-agnostic detector: one class, 'chromosome', read from the same records through a "
                        "one-class label map; it finds chromosomes and a classifier names them (`karyotf karyogram "
                        "IMAGE --model EXPORT --classifier exported/classifier`)")
    p.set_defaults(func=_config)


def _config(args) -> int:
    from ..pipelines import configure

    augment = None if args.augment is None else [a for a in args.augment.split(",") if a.strip()]
    if args.model == "yolo":
        from ..yolo.config import configure as configure_yolo

        if args.proposals is not None or args.fine_tune_type is not None or args.agnostic:
            from . import CliError

            raise CliError("--proposals, --fine-tune-type and --agnostic do not apply to yolo")
        result = configure_yolo(args.records, args.out, steps=args.steps, batch=args.batch,
                                image_size=args.image_size, learning_rate=args.learning_rate, augment=augment,
                                backbone=args.backbone, weights=args.weights or args.fine_tune)
        print(result.text())
        return 0
    if args.backbone is not None or args.weights is not None:
        from . import CliError

        raise CliError("--backbone and --weights are for yolo only (the OD API models take --fine-tune)")
    result = configure(args.model, args.records, args.out, steps=args.steps, batch=args.batch,
                       image_size=args.image_size, learning_rate=args.learning_rate, augment=augment,
                       fine_tune=args.fine_tune, fine_tune_type=args.fine_tune_type, proposals=args.proposals,
                       agnostic=args.agnostic)
    print(result.text())
    return 0
