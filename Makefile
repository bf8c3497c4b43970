# One-command set-up on a fresh Debian/Ubuntu machine: system fonts and Unicode data (apt),
# then a virtual environment with gankd and its dependencies from PyPI.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
APT_PACKAGES := fonts-noto-color-emoji fonts-noto-core fonts-inter-variable unicode-data chromium

.PHONY: demo test setup system-deps clean

demo: setup
	$(BIN)/gankd demo --out demo-out-$$(date +%Y%m%d-%H%M%S)

test: setup
	$(BIN)/pip install -q -e '.[test]'
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -n 2 -q

setup: system-deps $(BIN)/gankd

$(BIN)/gankd: pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	touch $@

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

clean:
	rm -rf $(VENV) demo-out-*
