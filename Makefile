# `make demo` and `make test` create .venv themselves if it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.hwlat-installed

.PHONY: demo test test-fast venv clean lock arm-check

venv: $(STAMP)

# torch first, pinned: the CPU wheel on this machine; an unpinned torch pulls a CUDA build.
# Every other package at the version of the lock (`make lock` writes it; README: "Pinned versions").
TORCH := torch==2.13.0
LOCK := requirements/lock.txt
$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c $(LOCK) $(TORCH)
	$(PY) -m pip install --quiet -c $(LOCK) -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m hwlat demo

# two workers, each test file whole on one of them and the Ray files together (tests/conftest.py)
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile --durations=15
# then the float-kernel tests again on other kernels: scalar ATen, AVX2 oneDNN, Sandy Bridge OpenBLAS
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Sandybridge \
		$(PY) -m pytest -q -n 2 --dist loadfile -m numerics

test-fast: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m "not slow"
	ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=AVX2 OPENBLAS_CORETYPE=Sandybridge \
		$(PY) -m pytest -q -n 2 --dist loadfile -m "numerics and not slow"

clean:
	rm -rf $(VENV) build *.egg-info

# The bundle on aarch64 under qemu-user, not part of `make test` (tools/arm/check.py, ~2 min): an
# arm64 root (Debian 12 packages + PyPI wheels, cached in .cache/arm64-sysroot/) runs bundles of
# float32 and int8 kernels, blocks and networks; their results are imported, their outputs compared
# with x86 LiteRT. As root it installs qemu-user-static and adds dpkg's arm64 architecture if missing.
arm-check: $(STAMP)
	command -v qemu-aarch64-static >/dev/null || { apt-get update -qq && \
	  apt-get install -y -qq --no-install-recommends qemu-user-static >/dev/null; }
	$(PY) tools/arm/sysroot.py --setup >/dev/null
	HWLAT_ARM_CHECK=1 $(PY) -m pytest -q -s -p no:cacheprovider tests/test_arm.py

# Rewrite $(LOCK): every package of '.[test]' and '.[ray]' and $(TORCH), resolved by pip-tools'
# pip-compile (pip's resolver, so it sees the local CPU wheel) in a throwaway venv, $(LOCK_VENV).
# Pins already in the file are kept unless pyproject.toml no longer allows them;
# LOCK_ARGS=--upgrade moves every package to its newest release, LOCK_ARGS='-P numpy' one.
# torch's local label (+cpu) is dropped: the pin holds for whichever build the first step installed.
LOCK_VENV ?= build/lock-venv
PIP_TOOLS ?= pip==26.3 pip-tools==7.6.2
LOCK_ARGS ?=
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { $(PYTHON) -m venv $(LOCK_VENV) && \
	  $(LOCK_VENV)/bin/python -m pip install --quiet $(PIP_TOOLS); }
	mkdir -p $(dir $(LOCK))
	echo '$(TORCH)' | CUSTOM_COMPILE_COMMAND='make lock' $(LOCK_VENV)/bin/pip-compile --quiet \
	  --extra test --extra ray --strip-extras --allow-unsafe --no-emit-index-url \
	  --no-emit-find-links --no-emit-trusted-host $(LOCK_ARGS) -o $(LOCK) pyproject.toml -
	sed -i 's/^\(torch==[^+ ]*\)+[^ ]*$$/\1/' $(LOCK)
