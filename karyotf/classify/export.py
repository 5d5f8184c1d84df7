"""Export a classifier run to a SavedModel, and load it back as a :class:`Classifier`.

``exported/classifier/`` holds::

    saved_model/      signature ``serving_default``: crops uint8 (N, S, S) + features float32 (N, F) of ONE cell
                      -> ``probabilities`` float32 (N, 24), columns in label-map order (ids 1..24)
    label_map.pbtxt   the 24 classes (ids 1..24, as the detectors' label maps)
    karyotf.json      kind "classifier" (:mod:`karyotf.rundir`'s schema), crop size, feature names, context, the
                      run and its best val top-1

Written atomically (a temporary folder renamed into place).
"""
from __future__ import annotations

from dataclasses import asdict

import shutil
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from .. import classes, rundir
from ..annotations import Box
from ..errors import ClassifierError
from ..io import replace_dir
from . import VIEWS
from .crops import FEATURES, cell_crops

# Imports inside functions, and why: TensorFlow / KerasCV / the OD API (heavy: kept off the import path);
# karyotf.classify.train (it loads OpenCV at its top); karyotf.odapi (importing it loads TensorFlow and applies the OD
# API's compatibility shims: only where TensorFlow is about to run).

META = rundir.INFO


def view(crops: np.ndarray, k: int) -> np.ndarray:
    """Orientation ``k`` (0..7) of a stack of square crops (N, S, S): k & 4 transposes, k & 1 flips left-right,
    k & 2 flips up-down (0 = as is)."""
    v = crops.transpose(0, 2, 1) if k & 4 else crops
    if k & 1:
        v = v[:, :, ::-1]
    if k & 2:
        v = v[:, ::-1, :]
    return np.ascontiguousarray(v)


def save_cell_model(model, size: int, features: int, path: Path) -> None:
    """Save a model of one cell's chromosomes (the classifier, the second look) as a SavedModel whose
    ``serving_default`` takes ``crops`` uint8 (N, S, S) and ``features`` float32 (N, F) of ONE cell and returns
    ``probabilities``, the softmax of its logits (N, K); ``features``: F, the measurements a crop comes with."""
    import tensorflow as tf

    nf = features

    class Serving(tf.Module):
        def __init__(self, m):
            super().__init__()
            self.model = m

        @tf.function(input_signature=[tf.TensorSpec([None, size, size], tf.uint8, name="crops"),
                                      tf.TensorSpec([None, nf], tf.float32, name="features")])
        def serve(self, crops, features):
            n = tf.shape(crops)[0]
            logits = self.model({"crops": crops[None], "features": features[None],
                                 "mask": tf.ones([1, n], tf.bool)}, training=False)
            return {"probabilities": tf.nn.softmax(logits[0])}

    module = Serving(model)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def export(run_dir: str | Path, out_dir: str | Path = "exported/classifier") -> Path:
    """Export the best weights of a classifier run (``runs/classifier``) to ``out_dir``; return ``out_dir``."""
    from .train import load_model, read_run

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    meta_in = read_run(run_dir)
    model, cfg = load_model(run_dir)
    size, nf = cfg.size, len(FEATURES)

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    try:
        save_cell_model(model, size, nf, tmp / "saved_model")
        classes.write_label_map(tmp / "label_map.pbtxt")
        state = meta_in.get("state", {})
        rundir.write_info(tmp, {
            "version": 1, "size": size, "features": list(FEATURES), "context": cfg.context,
            "config": meta_in["config"], "source_run": str(run_dir.resolve()),
            "records": meta_in.get("records"), "epochs_trained": state.get("epoch"),
            "best_val_top1": state.get("best_val_top1"), "best_epoch": state.get("best_epoch"),
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}, "classifier")
        replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


class Classifier:
    """An exported chromosome classifier: names the chromosomes of one cell from their boxes.

    ``Classifier(dir)`` loads an export dir (``karyotf classifier export``) or a run dir (its best weights);
    ``views``: test-time orientations per crop (:data:`VIEWS`)."""

    def __init__(self, path: str | Path, views: int = VIEWS):
        import tensorflow as tf

        from .. import odapi  # noqa: F401  (quiet TF logs)

        self.path = Path(path)
        if not 1 <= int(views) <= 8:
            raise ClassifierError(f"views={views}: 1 (the crop as it is) to 8 (every flip and quarter turn)")
        self.views = int(views)
        if (self.path / META).is_file() and (self.path / "saved_model").is_dir():
            self.info = rundir.read_info(self.path)
            if self.info.get("kind") != "classifier":
                raise ClassifierError(f"{self.path}: karyotf.json says kind {self.info.get('kind')!r}, not a "
                                      "classifier (fix: pass the folder written by `karyotf classifier export`)")
            loaded = tf.saved_model.load(str(self.path / "saved_model"))
            fn = loaded.signatures["serving_default"]
            self._keep = loaded
            self._run = lambda c, f: fn(crops=tf.constant(c), features=tf.constant(f))["probabilities"].numpy()
            self.size = int(self.info["size"])
        elif (self.path / rundir.CLASSIFIER_RUN).is_file():
            from .train import load_model

            model, cfg = load_model(self.path)
            self.info = {"kind": "classifier", "size": cfg.size, "features": list(FEATURES), "context": cfg.context,
                         "source_run": str(self.path), "config": asdict(cfg)}
            self.size = cfg.size
            self._run = lambda c, f: tf.nn.softmax(model({"crops": c[None], "features": f[None],
                                                          "mask": np.ones((1, len(c)), bool)},
                                                         training=False)[0]).numpy()
        else:
            raise ClassifierError(f"{self.path}: neither a classifier export (saved_model/ + {META}) nor a "
                                  "classifier run (classifier.json) (fix: `karyotf classifier train` / `export`)")
        if list(self.info.get("features", [])) != list(FEATURES):
            raise ClassifierError(f"{self.path}: exported with features {self.info.get('features')}, this karyotf "
                                  f"computes {list(FEATURES)} (fix: re-export the run with this version)")

    @property
    def trained_on(self) -> str:
        """What it was trained on for each box (:data:`karyotf.classify.data.INPUTS`): ``box`` crops, or
        ``separated`` cut-outs (exports and runs made before the setting existed: ``box``)."""
        return str((self.info.get("config") or {}).get("input", "box"))

    def probabilities(self, image: np.ndarray, boxes: Sequence[Box]) -> np.ndarray:
        """(N, 24) class probabilities of the N boxes of one cell (columns in ``classes.NAMES`` order), each box
        read as the classifier was trained: its box crop, or its separated cut-out (:attr:`trained_on`)."""
        if not len(boxes):
            return np.zeros((0, classes.NUM_CLASSES), np.float32)
        cutouts = None
        if self.trained_on == "separated":   # read as it was trained: each box through its separated mask
            from ..separate.separator import cutouts as cut

            cutouts = cut(image, boxes)
        cc = cell_crops(image, boxes, self.size, cutouts=cutouts)
        return self.probabilities_of(cc.crops, cc.features)

    def probabilities_of(self, crops: np.ndarray, features: np.ndarray) -> np.ndarray:
        """(N, 24) probabilities of one cell's crops (N, S, S) and measurements (N, F): the geometric mean over
        ``views`` orientations of each crop (the measurements do not change with orientation)."""
        if not len(crops):
            return np.zeros((0, classes.NUM_CLASSES), np.float32)
        crops = np.ascontiguousarray(crops, np.uint8)
        features = np.ascontiguousarray(features, np.float32)
        logs = [np.log(np.clip(np.asarray(self._run(view(crops, k), features), np.float64), 1e-12, 1.0))
                for k in range(self.views)]
        mean = np.mean(logs, axis=0)
        p = np.exp(mean - mean.max(axis=1, keepdims=True))
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)

    def __repr__(self) -> str:
        return (f"Classifier({str(self.path)!r}, size={self.size}, context={self.info.get('context')}, "
                f"views={self.views})")
