# Two entry points: `make demo` (a real reproduction, small by default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[test,convex]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/jaxreg reproduce matrix-dynamics --out runs/matrix-dynamics

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest -m "not slow" -n 2 --dist loadfile --durations=15 -q

.PHONY: install demo lint test
