# Two entry points: `make run` and `make test`. Both create .venv and install requirements.txt first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
DIR_q1 := Q1
DIR_q2 := Q2
DIR_q3a := Q3a
DIR_q3b := Q3b
BENCH_q1  := bench_retention
BENCH_q2  := bench_bytes
BENCH_q3a := evaluate_tagger
BENCH_q3b := bench_recommender
STAMP  := $(VENV)/.installed
SPARK_STAMP := $(VENV)/.installed-spark

.PHONY: run test test-fast sysdeps lint format venv venv-spark clean run-q1 run-q2 run-q3a run-q3b bench-q1 bench-q2 bench-q3a bench-q3b bench-q3b-api

venv: $(STAMP)

$(STAMP): requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.10+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 10) else None'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $(STAMP)

# The Spark engines' extra (Q2/Q3b --engine spark): pyspark, about 500 MB; only `make test` and Spark users need it.
venv-spark: $(SPARK_STAMP)

$(SPARK_STAMP): $(STAMP) requirements-spark.txt
	$(PY) -m pip install --quiet -r requirements-spark.txt
	touch $(SPARK_STAMP)

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

# The whole suite (what CI runs); test-fast leaves out the tests marked slow (compile-heavy, servers, big data).
test: venv venv-spark sysdeps
	$(PY) -m pytest

test-fast: venv
	$(PY) -m pytest -m "not slow"

# Debian packages some tests compare against or start (as root with apt-get, e.g. in CI); elsewhere those tests skip
# with a reason.
SYS_PACKAGES := goaccess nginx
sysdeps:
	@missing=""; for p in $(SYS_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else echo "note: not installed:$$missing (apt-get install$$missing); the tests that need them skip"; fi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Benchmarks run from inside their part's folder, so that its modules import by name; ARGS passes options.
bench-q1 bench-q2 bench-q3a bench-q3b: bench-%: venv
	cd $(DIR_$*) && ../$(PY) -m benchmarks.$(BENCH_$*) $(ARGS)

# Q3b's serving benchmark (needs wrk and nginx: apt-get install wrk nginx)
bench-q3b-api: venv
	cd Q3b && ../$(PY) -m benchmarks.bench_api $(ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
