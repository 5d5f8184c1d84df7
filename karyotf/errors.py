"""One exception type per stage; each carries the file, the object and the fix in its message."""
from __future__ import annotations

from pathlib import Path


class KaryotfError(Exception):
    """Base class of every error karyotf raises on bad input; the CLI prints it without a traceback."""


class AnnotationError(KaryotfError):
    """A bad annotation or image: names the file, the object index (if any) and the fix."""

    def __init__(self, path: str | Path, problem: str, fix: str = "", obj: int | None = None,
                 kind: str = "invalid"):
        self.path = Path(path)
        self.problem = problem
        self.fix = fix
        self.obj = obj
        self.kind = kind
        where = f"{self.path}" + (f", object #{obj}" if obj is not None else "")
        super().__init__(f"{where}: {problem}" + (f" (fix: {fix})" if fix else ""))


class ImageError(AnnotationError):
    """An image file or array that cannot be read as an image (``kind``: ``unreadable_image`` or
    ``missing_image``): names the file and the fix."""

    def __init__(self, path: str | Path, problem: str, fix: str = "", kind: str = "unreadable_image"):
        super().__init__(path, problem, fix, kind=kind)


class RecordsError(KaryotfError):
    """Records could not be written or read."""


class PipelineConfigError(KaryotfError):
    """A pipeline template or filled config is invalid, or conflicts with what sits in the model dir."""


class InfoError(KaryotfError, ValueError):
    """A run or export dir's ``karyotf.json`` that is not valid JSON (a ValueError too, for callers that treat it
    as absent)."""


class LabelMapError(KaryotfError, ValueError):
    """A label map that is missing, not a ``StringIntLabelMap`` text proto, or invalid for the OD API."""


class TrainError(KaryotfError):
    """Training could not start or resume."""


class ZooError(KaryotfError):
    """A model zoo archive could not be fetched, verified or unpacked: names the archive, the cache and the fix."""


class ExportError(KaryotfError):
    """A model could not be exported."""


class DetectError(KaryotfError):
    """An exported model could not be loaded or run."""


class KaryogramError(KaryotfError):
    """A karyogram could not be built."""


class RoboflowError(KaryotfError):
    """A Roboflow pull or import failed (missing key, offline, unknown layout)."""


class AugmentError(KaryotfError):
    """A bad augmentation op specification, or an augmentation that cannot be written."""


class EvaluateError(KaryotfError):
    """A model or records that cannot be evaluated: names the path and the fix."""


class ClassifierError(KaryotfError):
    """A chromosome classifier that cannot be trained, evaluated, exported or loaded: names the path and the fix."""


class DemoError(KaryotfError):
    """The demo could not run one of its steps."""


class ReviewError(KaryotfError):
    """A review folder, cell or correction that cannot be served or written: names the cell and the fix."""


class ModelError(KaryotfError):
    """The shipped (or a packed) model pair is missing, damaged or not a model pair (:mod:`karyotf.models`)."""


class SeparateError(KaryotfError):
    """A separation run or export that cannot be trained, exported or loaded: names the folder and the fix."""
