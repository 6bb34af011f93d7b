# Two entry points: `make demo` (a real reproduction, small by default) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The installed packages are byte-compiled on every core, not by pip on one (65 s -> 48 s
# on 2 cores); as with pip, a file that does not compile is left to its import.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile -c constraints.txt -e ".[test,convex]"
	-$(BIN)/python -m compileall -q -j 0 $(VENV)/lib > /dev/null
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/jaxreg reproduce matrix-dynamics --out runs/matrix-dynamics

# basedpyright: the library's static types ([tool.basedpyright] in pyproject.toml)
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/basedpyright

test: lint
	$(BIN)/python -m pytest -m "not slow" -n 2 --dist loadfile --durations=15 -q

.PHONY: install demo lint test
