"""``karyotf demo``: karyotf's main job on the built-in sample, then (``--train``) the whole pipeline in minutes.

``karyotf demo`` (:func:`karyotype_demo`, what ``make demo`` runs): the model pair shipped with karyotf
(:mod:`karyotf.models`, trained on CIL:54816 cells of other cases) karyotypes every cell of the built-in sample:
a karyogram, report and ISCN count call per cell with its review flags, the call from each cell's annotation beside
it, a picture of both karyograms of one cell side by side, and a summary of how many calls agree.

``karyotf demo --train`` (:func:`run_demo`, ``make demo-train``): the training walk-through:
records (32 sample cells, split by case) -> config + train SSD MobileNet v2 for a demo-length run as a class-agnostic
detector (it finds chromosomes) -> train the chromosome classifier (it names them) -> export both -> evaluate end to
end on the test split (COCO mAP + thesis P/R/F1) -> for one sample cell, a karyogram and the ISCN count call from
the demo models and from the cell's own annotation, side by side.  ``classifier_epochs=0`` runs the older path: a
24-class detector that finds and names alone.  Each step is one call of karyotf's Python
API; the demo adds no logic of its own beyond choosing the cell and putting the two karyograms side by side.

Everything goes under ``out_dir`` (default ``demo/``)::

    demo/records/        TFRecords, label map, manifest, stats
    demo/runs/ssd/       pipeline.config, checkpoints, TensorBoard events
    demo/runs/classifier/  the classifier run (checkpoints, TensorBoard events)
    demo/exported/ssd/   SavedModel + frozen graph
    demo/exported/classifier/  the classifier's SavedModel
    demo/eval/           metrics.json, table.md, plots
    demo/karyogram/      annotation/ and model/ karyograms + reports, side_by_side.png
    demo/summary.json    what ran, where each output is, timings

A demo-length model is not a diagnostic one: see :data:`DISCLAIMER`.
"""
from __future__ import annotations

import csv
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import defaults, pipelines, train
from .annotations import find_xml_files
from .classify.karyotyper import Karyotyper, open_model
from .errors import DemoError
from .evaluate import evaluate
from .export import export
from .io import atomic_path, atomic_write_json, atomic_write_text
from .karyogram import from_annotation, from_detector
from .paths import SAMPLE_DIR
from .records import build_records, load_manifest

# Imports inside functions, and why: Pillow (heavy: loaded when an image is decoded or drawn); karyotf.detect.Detector
# (looked up when a model is loaded, so that a caller may stand another Detector in karyotf.detect, as the tests do);
# karyotf.classify.export (it loads OpenCV at its top); karyotf.classify.train (it loads OpenCV at its top).

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("demo")
DEFAULT_MODEL = "ssd"
DEFAULT_STEPS = 200
"""Demo length. Measured on 2 shared cores (load 5-8 from other jobs): 300 steps at 320 px, batch 8 took 13 min of
training and 14.4 min in all; 200 steps keep the whole demo well under 15 minutes even on a busy machine."""
DEFAULT_IMAGE_SIZE = 320
DEFAULT_BATCH = 8
DEFAULT_SCORE_THRESHOLD = defaults.MIN_SCORE
"""Score threshold for the thesis metrics and for the model's karyogram (a short run rarely scores above 0.5)."""
DEFAULT_AUGMENT = ("hflip", "vflip", "rot90")
DEFAULT_LEARNING_RATE = 0.02
"""Peak of the cosine schedule. The thesis's 0.0002 fine-tunes pretrained weights; from scratch in a few hundred
steps it barely moves the loss. 0.02 (NOTES-odapi: 0.04 trained SSD from scratch here) took the total loss from 4.3
to 1.3 in 300 steps at 320 px, batch 8, on the sample."""

DEFAULT_CLASSIFIER_EPOCHS = 40
"""Classifier epochs on the sample's train cells (a few seconds an epoch on 2 cores); 0: no classifier, a 24-class
detector names what it finds."""

MAX_FLAGS_SHOWN = 6
"""The summary prints this many review flags of a karyogram (each cut at 160 characters); the report has them all."""

DISCLAIMER = ("A demo-length model is not a diagnostic one: it trained for {steps} steps from scratch on {n_train} "
              "sample cells, to show that every stage of the pipeline runs, not to call karyotypes. Its detections and "
              "its count call are not to be used for any clinical or research decision; the call from the cell's "
              "annotation is the reference. A useful model needs the full dataset, pretrained weights and a GPU "
              "(see the README).")


@dataclass
class DemoResult:
    """What :func:`run_demo` produced."""

    out_dir: Path
    model: str
    steps: int
    cell: str = ""
    n_train: int = 0
    outputs: dict[str, Path] = field(default_factory=dict)
    calls: dict[str, str] = field(default_factory=dict)
    flags: dict[str, list[str]] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    expected: str | None = None
    training: dict[str, float | None] = field(default_factory=dict)

    @property
    def disclaimer(self) -> str:
        return DISCLAIMER.format(steps=self.steps, n_train=self.n_train)

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "model": self.model, "steps": self.steps, "cell": self.cell,
                "train_cells": self.n_train, "outputs": {k: str(v) for k, v in self.outputs.items()},
                "calls": self.calls, "flags": self.flags, "expected_from_dataset": self.expected,
                "training": self.training, "metrics": self.metrics, "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
                "disclaimer": self.disclaimer}

    def text(self) -> str:
        lines = [f"karyotf demo: {self.model}, {self.steps} steps, done in {sum(self.seconds.values()):.0f} s "
                 f"({', '.join(f'{k} {v:.0f} s' for k, v in self.seconds.items())})", ""]
        t = self.training
        if t:
            lines.append(f"training: {t.get('steps')} steps"
                         + (f", {t['seconds_per_step']:.2f} s/step" if t.get("seconds_per_step") else "")
                         + (f", final total loss {t['total_loss']:.3f}" if t.get("total_loss") is not None else "")
                         + (f"; classifier {t['classifier_epochs']} epochs, best val top-1 "
                            f"{t['classifier_val_top1']:.3f}" if t.get("classifier_val_top1") is not None else ""))
        if self.metrics:
            m = self.metrics
            lines.append("test split: " + ", ".join(
                f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in m.items() if v is not None))
        if self.calls:
            lines.append(f"cell {self.cell}:")
            for source in ("annotation", "model"):
                if source in self.calls:
                    flags = self.flags.get(source) or []
                    shown = "; ".join(f[:160] + ("..." if len(f) > 160 else "") for f in flags[:MAX_FLAGS_SHOWN])
                    more = f" (+{len(flags) - MAX_FLAGS_SHOWN} more in the report)" if len(flags) > MAX_FLAGS_SHOWN else ""
                    lines.append(f"  from the {source:10s} {self.calls[source]:14s}"
                                 + (f"  flags: {shown}{more}" if flags else ""))
            if self.expected:
                lines.append(f"  the dataset lists:    {self.expected}")
        lines += ["", "outputs:"]
        width = max((len(k) for k in self.outputs), default=0)
        lines += [f"  {k:{width}s}  {v}" for k, v in self.outputs.items()]
        lines += ["", "NOTE: " + self.disclaimer]
        return "\n".join(lines)


def _timed(result: DemoResult, name: str):
    class _T:
        def __enter__(self):
            log.info("demo: %s ...", name)
            self.t0 = time.time()

        def __exit__(self, *exc):
            result.seconds[name] = time.time() - self.t0
            return False

    return _T()


def listed_karyotypes(src: Path) -> dict[str, str]:
    """image id -> 'count,abnormality' from a dataset's karyotypes.csv (abnormal cells only), if it has one."""
    path = Path(src) / "karyotypes.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as fh:
        return {row["image"]: f"{row['chromosome_count']} chromosomes, abnormality {row['abnormality']} "
                              f"({row['kind']})" for row in csv.DictReader(fh)}


def choose_cell(manifest: dict, listed: dict[str, str], cell: str | None = None) -> str:
    """The cell for the karyograms: ``cell`` if given, else a test-split cell (not trained on), an abnormal one first."""
    images = manifest["images"]
    if cell is not None:
        if cell not in images:
            raise DemoError(f"cell {cell!r} is not in the demo dataset; pick one of {', '.join(sorted(images)[:8])}, ...")
        return cell
    for split in ("test", "val", "train"):
        ids = sorted(i for i, v in images.items() if v["split"] == split)
        if ids:
            abnormal = [i for i in ids if i in listed]
            return (abnormal or ids)[0]
    raise DemoError("the demo records hold no image")


def side_by_side(left: Path, right: Path, titles: tuple[str, str], out: Path) -> Path:
    """Two karyogram pictures next to each other at the same height, each under its title."""
    from PIL import Image, ImageDraw, ImageFont

    a, b = Image.open(left).convert("RGB"), Image.open(right).convert("RGB")
    h = max(a.height, b.height)
    a = a.resize((round(a.width * h / a.height), h)) if a.height != h else a
    b = b.resize((round(b.width * h / b.height), h)) if b.height != h else b
    try:
        font = ImageFont.truetype("DejaVuSans.ttf", 28)
    except OSError:
        font = ImageFont.load_default()
    head, gap = 50, 20
    canvas = Image.new("RGB", (a.width + b.width + gap, h + head), "white")
    canvas.paste(a, (0, head))
    canvas.paste(b, (a.width + gap, head))
    draw = ImageDraw.Draw(canvas)
    draw.text((10, 10), titles[0], fill="black", font=font)
    draw.text((a.width + gap + 10, 10), titles[1], fill="black", font=font)
    draw.line([(a.width + gap // 2, 0), (a.width + gap // 2, h + head)], fill=(160, 160, 160), width=2)
    with atomic_path(out) as tmp:
        canvas.save(tmp, format="PNG")
    return out


def run_demo(out_dir: str | Path = DEFAULT_OUT, *, src: str | Path | None = None, model: str = DEFAULT_MODEL,
             steps: int = DEFAULT_STEPS, image_size: int = DEFAULT_IMAGE_SIZE, batch: int = DEFAULT_BATCH,
             score_threshold: float = DEFAULT_SCORE_THRESHOLD, cell: str | None = None,
             augment: tuple[str, ...] | list[str] = DEFAULT_AUGMENT, learning_rate: float = DEFAULT_LEARNING_RATE,
             seed: int = 0, fresh: bool = True, classifier_epochs: int = DEFAULT_CLASSIFIER_EPOCHS,
             progress: bool = True) -> DemoResult:
    """Run records -> config -> train -> export -> eval -> karyograms on ``src`` (default: the built-in sample).

    ``fresh``: start the model from scratch (drop ``out_dir/runs/MODEL`` of an earlier demo) rather than resume it.
    Returns a :class:`DemoResult`; also writes ``out_dir/summary.json`` and ``out_dir/summary.txt``.
    """
    if steps < 1:
        raise DemoError(f"steps={steps}: train at least 1 step")
    if classifier_epochs < 0:
        raise DemoError(f"classifier_epochs={classifier_epochs}: 0 (no classifier) or more")
    agnostic = classifier_epochs > 0
    out_dir = Path(out_dir)
    src = Path(src) if src is not None else SAMPLE_DIR
    result = DemoResult(out_dir=out_dir, model=f"{model} (class-agnostic) + classifier" if agnostic else model,
                        steps=steps)
    records_dir, model_dir = out_dir / "records", out_dir / "runs" / model
    export_dir, eval_dir, karyo_dir = out_dir / "exported" / model, out_dir / "eval", out_dir / "karyogram"

    # 1. records
    with _timed(result, "records"):
        records = build_records(src, records_dir, seed=seed, progress=progress)
        result.n_train = records.counts.get("train", 0)
        if not records.counts.get("test"):
            raise DemoError(f"{src}: the split left no test cell; give the demo a dataset with more cases")
    result.outputs["records"] = records_dir
    result.outputs["class distribution"] = records.chart

    # 2. config + train
    with _timed(result, "train"):
        if fresh and model_dir.exists():
            shutil.rmtree(model_dir)
        pipelines.configure(model, records_dir, model_dir, steps=steps, batch=batch, image_size=image_size,
                            learning_rate=learning_rate, augment=list(augment), agnostic=agnostic)
        trained = train.train(model_dir, steps=steps, progress=progress)
        result.training = {"steps": trained.final_step, "seconds_per_step": trained.seconds_per_step,
                           "total_loss": trained.losses.get("Loss/total_loss")}
    result.outputs["model dir (checkpoints, TensorBoard: tensorboard --logdir)"] = model_dir

    classifier = None
    if agnostic:  # 2b. the classifier that names what the detector finds
        with _timed(result, "classifier"):
            from .classify.export import export as export_classifier
            from .classify.train import train as train_classifier

            run = out_dir / "runs" / "classifier"
            if fresh and run.exists():
                shutil.rmtree(run)
            done = train_classifier(records_dir, run, epochs=classifier_epochs, progress=progress)
            result.training["classifier_epochs"] = done.epochs
            result.training["classifier_val_top1"] = done.best_val_top1
            classifier = Path(export_classifier(run, out_dir / "exported" / "classifier"))
        result.outputs["exported classifier"] = classifier

    # 3. export
    with _timed(result, "export"):
        exported = Path(export(model_dir, export_dir))
    result.outputs["exported model (SavedModel + frozen graph)"] = exported

    # the model object: the detector, named by the classifier when there is one
    detector = open_model(exported, classifier=classifier) if classifier is not None else None

    # 4. evaluate on the test split
    with _timed(result, "eval"):
        report = evaluate(exported, records_dir, split="test", score_threshold=score_threshold, out_dir=eval_dir,
                          finder=detector)
        result.metrics = _headline(report)
    result.outputs["evaluation (metrics.json, table.md, plots)"] = eval_dir

    # 5. karyograms of one cell: from its annotation and from the model
    with _timed(result, "karyograms"):
        from .detect import Detector

        manifest = load_manifest(records_dir)
        listed = listed_karyotypes(src)
        result.cell = choose_cell(manifest, listed, cell)
        result.expected = listed.get(result.cell)
        xml = _xml_of(src, result.cell)
        truth = from_annotation(xml, karyo_dir / "annotation")
        if detector is None:
            detector = Detector(exported)
        floor = score_threshold  # not tuned on val: a demo-length model's best floor can be "nothing at all"
        pred = from_detector(detector, truth.source["image"], karyo_dir / "model", min_score=floor)
        for source, res in (("annotation", truth), ("model", pred)):
            result.calls[source] = res.call.text
            result.flags[source] = [f"{f.level}: {f.message}" for f in res.flags]  # the review level first
        pair = side_by_side(_picture(truth), _picture(pred),
                            ("from the annotation (the truth)",
                             f"from the demo model (score >= {floor:g}; not diagnostic)"),
                            karyo_dir / "side_by_side.png")
    result.outputs["karyograms side by side"] = pair
    result.outputs["karyogram + report from the annotation"] = karyo_dir / "annotation"
    result.outputs["karyogram + report from the model"] = karyo_dir / "model"

    result.outputs["summary"] = atomic_write_json(out_dir / "summary.json", result.to_dict())
    atomic_write_text(out_dir / "summary.txt", result.text() + "\n")
    return result


def _xml_of(src: Path, cell: str) -> Path:
    for xml in find_xml_files(src):
        if xml.stem == cell:
            return xml
    raise DemoError(f"{src}: no annotation for cell {cell}")


def _picture(res) -> Path:
    pic = res.paths.get("karyogram")
    if pic is None or not Path(pic).is_file():
        raise DemoError(f"the karyogram step wrote no picture ({res.paths})")
    return Path(pic)


def _headline(report) -> dict[str, float | None]:
    """Overall precision / recall / F1 (at the score threshold) and the COCO mAPs of an EvalReport."""
    return {"images": report.images, "precision": report.precision, "recall": report.recall, "F1": report.f1,
            "mAP@0.5": report.map50, "mAP@[.5:.95]": report.map}


KARYOTYPE_OUT = Path("demo")


@dataclass
class KaryotypeDemo:
    """What :func:`karyotype_demo` produced: one row a cell (image, model call, annotation call, agree, flags)."""

    out_dir: Path
    cells: list[dict] = field(default_factory=list)
    outputs: dict[str, Path] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    model: str = ""

    @property
    def agree(self) -> int:
        return sum(c["agree"] for c in self.cells)

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "model": self.model, "cells": self.cells, "agree": self.agree,
                "outputs": {k: str(v) for k, v in self.outputs.items()},
                "seconds": {k: round(v, 1) for k, v in self.seconds.items()}}

    def text(self) -> str:
        n = len(self.cells)
        lines = [f"karyotf demo: {n} sample cells karyotyped by {self.model} in {self.seconds.get('karyotype', 0):.0f} s"
                 f" (model loaded in {self.seconds.get('load', 0):.0f} s)", "",
                 f"{'cell':10s} {'model call':22s} {'annotation':22s} agree  review flags (notes: see the reports)"]
        for c in self.cells:
            flags = c["flags"]
            shown = ", ".join(flags[:MAX_FLAGS_SHOWN]) + (f" (+{len(flags) - MAX_FLAGS_SHOWN})"
                                                          if len(flags) > MAX_FLAGS_SHOWN else "")
            lines.append(f"{c['image']:10s} {c['model']:22s} {c['annotation']:22s} "
                         f"{'yes' if c['agree'] else 'NO ':5s}  {shown}")
        abnormal = [c for c in self.cells if not c["annotation_normal"]]
        lines += ["", f"the model's call equals the annotation's on {self.agree} of {n} cells"
                  + (f" ({sum(c['agree'] for c in abnormal)} of {len(abnormal)} numerically abnormal)" if abnormal
                     else "")
                  + f"; {sum(bool(c['flags']) for c in self.cells)} cells carry review flags (the call may be wrong: "
                    "check those first).", "", "outputs:"]
        width = max((len(k) for k in self.outputs), default=0)
        lines += [f"  {k:{width}s}  {v}" for k, v in self.outputs.items()]
        lines += ["", "NOTE: research and teaching only, not a diagnostic device: every call must be checked by a "
                      "qualified person (the model card: `karyotf models --card`)."]
        return "\n".join(lines)


def karyotype_demo(out_dir: str | Path = KARYOTYPE_OUT, *, src: str | Path | None = None, detector=None,
                   cell: str | None = None, progress: bool = True) -> KaryotypeDemo:
    """Karyotype every cell of ``src`` (default: the built-in sample) with ``detector`` (default: the shipped pair,
    :meth:`karyotf.classify.karyotyper.Karyotyper.default`), beside the call from each cell's annotation.

    Writes ``out_dir/karyograms/<cell>/`` (karyogram, detections, report) and ``calls.csv``, ``out_dir/demo.csv``
    (model call, annotation call, agree, flags a cell), for one cell (``cell``, default an abnormal one) both
    karyograms side by side, and ``summary.json`` / ``summary.txt``."""
    import io as _io

    from .annotations import find_xml_files, read_voc
    from .io import atomic_write_json, atomic_write_text
    from .karyogram import count_call, from_annotation
    from .karyogram.build import karyograms
    from .paths import SAMPLE_DIR

    out_dir = Path(out_dir)
    src = Path(src) if src is not None else SAMPLE_DIR
    result = KaryotypeDemo(out_dir=out_dir)
    xmls = {x.stem: x for x in find_xml_files(src)}
    image_dir = src / "images" if (src / "images").is_dir() else src
    images = sorted(p for p in image_dir.iterdir() if p.stem in xmls and p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not images:
        raise DemoError(f"{src}: no annotated image (fix: images/ + annotations/ with XML named after the images)")
    with _timed(result, "load"):
        if detector is None:
            detector = Karyotyper.default()
            result.model = "the default pair"
        else:
            result.model = detector.describe()["model"]
    with _timed(result, "karyotype"):
        res = karyograms(images, out_dir / "karyograms", model=detector, progress=progress)
    listed = listed_karyotypes(src)
    for img, r in zip(images, res):
        ann = read_voc(xmls[img.stem], image_dir=image_dir)
        truth = count_call(ann.boxes)
        call = r.call  # None: the cell failed (a KaryogramFailure, listed with its error in calls.csv)
        result.cells.append({"image": img.stem, "model": call.text if call else f"error: {r.error}",
                             "annotation": truth.text,
                             "agree": call is not None and call.iscn is not None and call.iscn == truth.iscn,
                             "annotation_normal": truth.is_normal, "flags": call.review_codes if call else ["error"],
                             "notes": [f.code for f in call.notes] if call else [],
                             "listed": listed.get(img.stem)})
    chosen = cell or next((c["image"] for c in result.cells if not c["annotation_normal"]), result.cells[0]["image"])
    if chosen not in {c["image"] for c in result.cells}:
        raise DemoError(f"cell {chosen!r} is not among the demo's cells")
    truth_res = from_annotation(xmls[chosen], out_dir / "annotation" / chosen, image=image_dir / f"{chosen}.jpg")
    model_pic = out_dir / "karyograms" / chosen / "karyogram.png"
    pair = side_by_side(_picture(truth_res), model_pic, ("from the annotation (the truth)",
                                                         "from the default model pair"),
                        out_dir / f"side_by_side_{chosen}.png")
    buf = _io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(["image", "model_call", "annotation_call", "agree", "review", "notes"])
    for c in result.cells:
        wr.writerow([c["image"], c["model"], c["annotation"], int(c["agree"]), ";".join(c["flags"]),
                     ";".join(c["notes"])])
    result.outputs["karyograms, reports (one folder a cell) and calls.csv"] = out_dir / "karyograms"
    result.outputs["model call beside annotation call"] = atomic_write_text(out_dir / "demo.csv", buf.getvalue())
    result.outputs[f"karyograms of cell {chosen} side by side"] = pair
    result.outputs["review them in the browser"] = Path(f"karyotf review {out_dir / 'karyograms'}")
    result.outputs["summary"] = atomic_write_json(out_dir / "summary.json", result.to_dict())
    atomic_write_text(out_dir / "summary.txt", result.text() + "\n")
    return result
