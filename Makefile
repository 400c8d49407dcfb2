# The two commands of the README:
#   make book   set up (.venv) and build the website into _build/html, executing the chapters
#   make test   set up (.venv) and run the whole test suite (what .ci/run runs)
# Other targets: make venv | make bench | make exercises | make clean

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# small torch models train fastest on one thread (see ../shared/toolchain.md)
export OMP_NUM_THREADS := 1
export MKL_NUM_THREADS := 1
export REGLIB_THREADS := 1
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: venv book test bench exercises clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade -q pip
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -e .
	$(BIN)/pip install --no-deps -e grader
	touch $@

book: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/jupyter-book build . -W -n --keep-going

test: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest

bench: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/run_notebooks.py

# regenerate the student versions in exercises/ from the nbgrader sources in solutions/
exercises: venv
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python tools/release.py

clean:
	rm -rf _build .pytest_cache
