# Two entry points: `make demo` (a real reproduction, small by default) and `make test`
# (lint, the docs site, the tests); `make docs` builds the site alone.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The installed packages are byte-compiled on every core, not by pip on one (65 s -> 48 s
# on 2 cores); as with pip, a file that does not compile is left to its import.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --no-compile -c constraints.txt -e ".[test,convex,docs]"
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

# the documentation site, into site/ (git-ignored); --strict: any warning, e.g. a broken
# link, anchor or API reference, fails it (not with --quiet, which hides the warnings from
# the count). The plugins' notices about MkDocs 2 are silenced.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true $(BIN)/mkdocs build --strict --site-dir site

test: lint docs
	$(BIN)/python -m pytest -m "not slow" -n 2 --dist loadfile --no-loadscope-reorder --durations=15 -q

.PHONY: install demo lint docs test
