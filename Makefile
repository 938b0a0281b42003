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

# 2,000 seeded fault schedules beyond make test's 200 (a table, and JSON under out/soak/), then
# 2,000 interrupts at seeded random points beyond make test's 150 (LEADLEX_INTERRUPT_SEED picks others)
soak: $(STAMP)
	$(PY) soak/run.py
	LEADLEX_SOAK_INTERRUPTS=$${LEADLEX_SOAK_INTERRUPTS:-2000} $(PY) -m pytest tests/e2e/test_interrupt_points.py -q -s

clean:
	rm -rf $(VENV) out .pytest_cache
