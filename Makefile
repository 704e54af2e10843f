# Two entry points: `make run` and `make test`. Both create .venv and install requirements.txt first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test venv bench clean run-q1 run-q2 run-q3a run-q3b

venv: $(STAMP)

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.10+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 10) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

run: venv run-q1 run-q2 run-q3a run-q3b

run-q1: venv
	@echo; echo "=== Q1: install-cohort retention (PostgreSQL) ==="
	$(PY) Q1/sql.py

run-q2: venv
	@echo; echo "=== Q2: bytes transferred by .jpg files ==="
	$(PY) Q2/raw_data_analytics.py

run-q3a: venv
	@echo; echo "=== Q3a: Cantonese article tagging ==="
	$(PY) Q3a/tagging_prediction.py --quick $(if $(wildcard ../shared/data/hk01/articles.csv),--train ../shared/data/hk01/articles.csv,--demo)

run-q3b: venv
	@echo; echo "=== Q3b: user-user artist recommendations ==="
	$(PY) Q3b/recommender.py demo

test: venv
	$(PY) -m pytest

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
