# Two commands work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
GF      = $(VENV)/bin/ganforge
STAMP   = $(VENV)/.ganforge-installed
DEMO    ?= runs/demo

.PHONY: install browser demo test bench judge clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# The pinned CPU torch first: a bare `torch` requirement would pull several GB of CUDA packages.
	$(PY) -m pip install --disable-pip-version-check -q torch==2.13.0
	$(PY) -m pip install --disable-pip-version-check -q -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# Train the default DCGAN on the built-in real MNIST digits, write samples and score them.
demo: $(STAMP)
	@if [ -f $(DEMO)/checkpoints/latest ]; then \
	  echo "continuing $(DEMO) (delete it for a fresh demo)"; $(GF) train --resume $(DEMO); \
	else $(GF) train dcgan --name $(notdir $(DEMO)) train.runs_dir=$(dir $(DEMO)); fi
	$(GF) sample $(DEMO) -n 100 --nrow 10 --out $(DEMO)/final-samples.png
	$(PY) benchmarks/judge_run.py $(DEMO) -n 2000

# The web page's end-to-end tests drive Debian's Chromium through chromedriver (required under CI=true).
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	elif command -v sudo >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  sudo apt-get update -q && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver; \
	else echo "warning: chromium and chromium-driver are missing and cannot be installed here; browser tests will skip"; fi

test: $(STAMP) browser
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/speed_dcgan.py

judge: $(STAMP)
	$(PY) scripts/train_judge.py
	$(PY) scripts/calibrate_judge.py

clean:
	rm -rf $(VENV) .pytest_cache
