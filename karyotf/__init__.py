"""karyotf: automated human karyotyping with the TensorFlow Object Detection API.

The pipeline, one module a stage: ``classes`` -> ``annotations`` -> ``augment`` -> ``records`` -> ``pipelines``
-> ``train`` -> ``evaluate`` -> ``export`` -> ``detect`` -> ``karyogram``.  ``odapi`` is the only module that
touches ``object_detection`` internals; ``cli`` only parses arguments.
"""
__version__ = "0.1.0"


def __getattr__(name):
    """``karyotf.Karyotyper`` (``karyotf.Karyotyper.default().karyotype(image)``), imported on first use so that
    ``import karyotf`` stays light (no TensorFlow)."""
    if name == "Karyotyper":
        from .classify.karyotyper import Karyotyper

        return Karyotyper
    raise AttributeError(f"module 'karyotf' has no attribute {name!r}")
