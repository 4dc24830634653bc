# autodl — set-up and everyday commands. `make demo` and `make test` do all set-up themselves.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip -q
# torch comes first and pinned: a CPU wheel of 2.13.0 lies on this machine's disk, while an
# unpinned `torch` requirement would pull a multi-GB CUDA build.
TORCH  ?= torch==2.13.0

.PHONY: demo test test-fast bench bench-overhead clean help

help:
	@echo "make demo            set up .venv and run a short search on the digits data"
	@echo "make test            set up .venv with dev extras and run the whole test suite"
	@echo "make bench           set up .venv with the comparison tools of benchmarks/ (the bench extra)"
	@echo "make bench-overhead  per-trial overhead: autodl vs Optuna"

$(VENV)/.core: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install "$(TORCH)"
	$(PIP) install -e .
	touch $@

# what the README's next steps after the demo need: `autodl export` / `autodl predict` (onnx,
# onnxruntime, skl2onnx) and `autodl report` (matplotlib); about 60 MB to download, 200 MB
# installed, against torch's 750 MB
$(VENV)/.demo: pyproject.toml $(VENV)/.core
	$(PIP) install -e ".[onnx,report]"
	touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.core
	$(PIP) install -e ".[dev]"
	touch $@

demo: $(VENV)/.demo
	@run=runs/demo-$$(date +%Y%m%d-%H%M%S); \
	$(VENV)/bin/autodl search --dataset digits --trials 16 --time 90s --cv 3 --workers 2 --out $$run && \
	echo "next (or \`source $(VENV)/bin/activate\` and drop the $(VENV)/bin/):" && \
	echo "  $(VENV)/bin/autodl report $$run" && \
	echo "  $(VENV)/bin/autodl export $$run --onnx $$run/model.onnx"

# the comparison tools of benchmarks/ (coco-experiment for BBOB); `make test`
# does not install them, and the benchmark smoke tests that need them skip
$(VENV)/.bench: pyproject.toml $(VENV)/.dev
	$(PIP) install -e ".[dev,bench]"
	touch $@

bench: $(VENV)/.bench

test: $(VENV)/.dev
	$(PY) -m pytest -q --durations=40

test-fast: $(VENV)/.dev
	$(PY) -m pytest -q -m "not slow"

bench-overhead: $(VENV)/.bench
	$(PY) benchmarks/overhead.py

clean:
	rm -rf $(VENV) runs build *.egg-info .pytest_cache
