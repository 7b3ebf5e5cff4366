# cogvision: `make demo` and `make test` work on a fresh machine from a clean clone.
# torch is installed first and pinned; torchvision must never be installed (see PLATFORM.md).

PYTHON ?= python3
VENV ?= .venv
LS_VENV ?= .venv-labelstudio
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_PIN := torch==2.13.0
LABEL_STUDIO_PIN := label-studio==1.23.2
# Label Studio 1.23.2 calls sentry_sdk.init(send_default_pii=...), which sentry-sdk 3 refuses.
LABEL_STUDIO_DEPS := 'sentry-sdk>=2,<3'
DEMO_DIR ?= work/demo

.PHONY: demo test install install-labelstudio install-browser lint schemas clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q $(TORCH_PIN)
	$(PIP) install -q -e '.[dev]'
	@if $(PIP) show torchvision >/dev/null 2>&1; then echo "torchvision got installed: remove it" >&2; exit 1; fi
	touch $@

install: $(VENV)/.installed

# Label Studio pins openai<2 and pyarrow<25, so it lives in its own virtual environment.
$(LS_VENV)/.installed: Makefile
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q --upgrade pip
	$(LS_VENV)/bin/python -m pip install -q $(LABEL_STUDIO_PIN) $(LABEL_STUDIO_DEPS)
	touch $@

install-labelstudio: $(LS_VENV)/.installed

# Headless Chromium for the labeling-UI screenshot test (Debian packages).
install-browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

demo: install
	HF_HUB_OFFLINE=1 DEMO_DIR=$(DEMO_DIR) VENV=$(VENV) bash scripts/demo.sh

test: install install-labelstudio install-browser
	$(VENV)/bin/ruff check cogvision tests benchmarks
	$(VENV)/bin/mypy
	HF_HUB_OFFLINE=1 COGVISION_LABEL_STUDIO=$(abspath $(LS_VENV))/bin/label-studio $(PY) -m pytest -q -p no:cacheprovider tests

lint: install
	$(VENV)/bin/ruff check cogvision tests benchmarks
	$(VENV)/bin/mypy

schemas: install
	$(VENV)/bin/cogvision schema export --out schemas

clean:
	rm -rf work .pytest_cache
