"""karyotf: automated human karyotyping with the TensorFlow Object Detection API.

Install with `make install` (a venv with the exact pins of constraints.txt). The OD API packaging and
tf-models-official are not listed in install_requires because they must be installed with --no-deps.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def _requirements(name):
    lines = (HERE / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


setup(
    name="karyotf",
    version="0.1.0",
    description="Chromosome detection, karyograms and karyotype calls with the TensorFlow Object Detection API",
    long_description=(HERE / "README.md").read_text(encoding="utf-8") if (HERE / "README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires="==3.11.*",
    packages=find_packages(include=["karyotf", "karyotf.*"]),
    include_package_data=True,
    package_data={"karyotf": ["data/**/*", "templates/*", "review/static/*"]},
    install_requires=_requirements("requirements.txt"),
    extras_require={"dev": _requirements("requirements-dev.txt")},
    entry_points={"console_scripts": ["karyotf = karyotf.cli:main"]},
    license="Apache-2.0",
)
