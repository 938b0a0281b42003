# Two commands set everything up: `make demo` and `make test` create .venv when it is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint sandbox bench soak clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m leadlex_nb.demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check leadlex_nb tests benchmarks
	$(VENV)/bin/mypy --strict leadlex_nb

sandbox: $(STAMP)
	$(VENV)/bin/leadlex-nb sandbox --port 8787 --seed-contacts 1000

bench: $(STAMP)
	$(PY) -m benchmarks.run

# 2,000 seeded fault schedules beyond make test's 200; a table, and JSON under out/soak/
soak: $(STAMP)
	$(PY) soak/run.py

clean:
	rm -rf $(VENV) out .pytest_cache
