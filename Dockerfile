# karyotf on an NVIDIA GPU: the pinned TF Object Detection API stack on a CUDA TensorFlow image.
#
#   docker build -t karyotf .
#   docker run --rm --gpus all -v "$PWD:/workspace" karyotf doctor        # lists the GPU
#   docker run --rm --gpus all -v "$PWD:/workspace" karyotf train ssd     # records/, runs/, exported/ land in $PWD
#   docker run --rm -v "$PWD:/workspace" karyotf demo                     # CPU only: leave out --gpus
#
# Base image and TF version. constraints.txt pins TensorFlow 2.15.1 (as `tensorflow-cpu`, the CPU wheel of the venv).
# TensorFlow published no 2.15.1 image: the 2.15 line on Docker Hub is `2.15.0-gpu` (Ubuntu 22.04, Python 3.11,
# CUDA 12.2, cuDNN 8.9). 2.15.1 is a patch release built against the same CUDA 12.2 / cuDNN 8.9, so the image keeps
# that base (its CUDA libraries) and upgrades its `tensorflow` wheel, the GPU build, to TF_VERSION in place.
# `tensorflow-cpu` is never installed here: it would shadow the GPU build. tests/test_docker.py checks that
# TF_VERSION equals the pin in constraints.txt and that the base tag is the same major.minor release.
ARG TF_VERSION=2.15.1
FROM tensorflow/tensorflow:2.15.0-gpu

ARG TF_VERSION
LABEL org.opencontainers.image.title="karyotf" \
      org.opencontainers.image.description="Chromosome detection, karyograms and karyotype calls with the TF Object Detection API" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MPLBACKEND=Agg \
    MPLCONFIGDIR=/tmp/matplotlib \
    KARYOTF_CACHE=/workspace/.cache/karyotf \
    TF_CPP_MIN_LOG_LEVEL=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /opt/karyotf

# 1. The pinned stack, as `make install` does it, minus tensorflow-cpu: requirements.txt with -c constraints.txt,
#    then the OD API packaging and tf-models-official with --no-deps. lvis pulls `opencv-python` (the GUI build,
#    which needs libGL, absent here) beside `opencv-python-headless`; both write cv2/, so the headless build is
#    reinstalled last and cv2 imports without libGL.
COPY constraints.txt requirements.txt requirements-nodeps.txt ./
RUN python3 -c "import sys; assert sys.version_info[:2] == (3, 11), sys.version" \
 && python3 -m pip install --no-cache-dir pip==24.3.1 setuptools==75.6.0 wheel==0.45.1 \
 && sed '/^tensorflow-cpu\b/d' requirements.txt > /tmp/requirements-gpu.txt \
 && python3 -m pip install --no-cache-dir -c constraints.txt "tensorflow==${TF_VERSION}" -r /tmp/requirements-gpu.txt \
 && python3 -m pip install --no-cache-dir --no-deps -c constraints.txt -r requirements-nodeps.txt \
 && python3 -m pip install --no-cache-dir --no-deps --force-reinstall -c constraints.txt \
        "$(grep '^opencv-python-headless==' constraints.txt)"

# 2. karyotf itself, non-editable (setup.py reads requirements-dev.txt for its `dev` extra). The pipeline templates
#    (top-level pipelines/) go inside the package, where karyotf.paths looks for them without a source checkout.
COPY setup.py requirements-dev.txt ./
COPY karyotf/ karyotf/
COPY pipelines/ karyotf/templates/
RUN python3 -m pip install --no-cache-dir --no-deps --no-build-isolation .

# 3. The working dir: records/, runs/ and exported/ are relative to it. The whole of /workspace is the volume (not
#    the three subdirs: a VOLUME declared on a subdir would shadow it with an anonymous volume even when the user
#    bind-mounts the parent with -v "$PWD:/workspace", and the outputs would not appear on the host).
#    The checks run here, away from /opt/karyotf, so that they import the installed package, not the sources.
WORKDIR /workspace
RUN python3 -c "import importlib.metadata as md, tensorflow as tf; \
v = md.version('tensorflow'); assert v == tf.__version__ == '${TF_VERSION}', (v, tf.__version__); \
names = {d.metadata['Name'].lower() for d in md.distributions()}; \
assert 'tensorflow-cpu' not in names, 'tensorflow-cpu would shadow the GPU build'; \
import karyotf.paths as p; assert '-packages' in str(p.PACKAGE_DIR), p.PACKAGE_DIR; \
assert any(p.TEMPLATES_DIR.glob('*.config')), p.TEMPLATES_DIR; \
assert len(list((p.SAMPLE_DIR / 'annotations').glob('*.xml'))) > 0, p.SAMPLE_DIR" \
 && karyotf doctor --quick \
 && mkdir -p records runs exported \
 && chmod 0777 . records runs exported
VOLUME ["/workspace"]

ENTRYPOINT ["karyotf"]
CMD ["--help"]
