# Two commands work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
GF      = $(VENV)/bin/ganforge
STAMP   = $(VENV)/.ganforge-installed
DEMO    ?= runs/demo

.PHONY: install demo test bench judge clean

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

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/speed_dcgan.py

judge: $(STAMP)
	$(PY) scripts/train_judge.py
	$(PY) scripts/calibrate_judge.py

clean:
	rm -rf $(VENV) .pytest_cache
