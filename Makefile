# Quorum: the two commands of the README's quick start are `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DB     ?= sqlite:///quorum.db
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test lint bench demo clean assets

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Quorum needs Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

## run: set up, load the demo programme into quorum.db, serve the web app with the scheduler
run: $(STAMP)
	$(BIN)/quorum --db $(DB) db upgrade
	$(BIN)/quorum --db $(DB) demo
	$(BIN)/quorum --db $(DB) serve --host $(HOST) --port $(PORT)

## test: set up, lint, check the layers' import contracts and the types, and run the whole
## suite (SQLite and a throwaway PostgreSQL) in TEST_WORKERS processes (pytest-xdist; a
## file's tests stay in one process, so its module fixtures are shared; 0: one process)
TEST_WORKERS ?= 2
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check .

## bench: command throughput vs bare SQLAlchemy; scoring vs bare durable_rules; the deadline sweep;
## a grant's whole lifecycle vs SpiffWorkflow and a bare floor; every page at 1k, 10k and 100k
## bids (bench/results/; the scaling run takes the better part of an hour)
bench: $(STAMP)
	$(BIN)/python -m bench.bench_commands --n 2000 --sync NORMAL --out bench/results/commands.json
	$(BIN)/python -m bench.bench_commands --n 2000 --sync FULL --out bench/results/commands-full.json
	$(BIN)/python -m bench.bench_scoring --n 10000 --rounds 10 --out bench/results/scoring.json
	$(BIN)/python -m bench.bench_score_round --n 10000 --rounds 10 --out bench/results/score_round.json
	$(BIN)/python -m bench.bench_sweep --grants 100000 --db sqlite --out bench/results/sweep.json
	$(BIN)/python -m bench.lifecycle --n 20 --rounds 5 --out bench/results/lifecycle.json
	$(BIN)/python -m bench.scale --sizes 1000,10000,100000 --meeting-pages --out bench/results/scale.json

## bench-compare BASE=/path/to/other/checkout: every benchmark on BASE and on this checkout,
## interleaved, each with its own venv; before/after table (bench/compare.py; COMPARE_ARGS=...)
.PHONY: bench-compare
bench-compare: $(STAMP)
	@test -n "$(BASE)" || { echo "usage: make bench-compare BASE=/path/to/other/checkout [COMPARE_ARGS=...]"; exit 1; }
	$(BIN)/python bench/compare.py --base $(BASE) --new . $(COMPARE_ARGS)

## assets: regenerate quorum_web/static/govuk/ from the npm registry (GOV.UK Frontend, pinned;
## needs node and npm; the committed files are what runs, so CI and `make test` need neither)
GOVUK_FRONTEND ?= 6.3.0
SASS           ?= 1.108.2
GOVUK_DIR      := quorum_web/static/govuk
assets:
	@command -v npm >/dev/null || { echo "error: npm not found (make assets needs node and npm)"; exit 1; }
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	cd "$$tmp" && npm init -y >/dev/null && \
	npm install --no-audit --no-fund --ignore-scripts --save-exact govuk-frontend@$(GOVUK_FRONTEND) sass@$(SASS) >/dev/null; \
	cd - >/dev/null; \
	"$$tmp/node_modules/.bin/sass" --no-source-map --style=compressed --quiet-deps --load-path="$$tmp/node_modules" \
	  $(GOVUK_DIR)/quorum-govuk.scss $(GOVUK_DIR)/govuk-frontend.min.css; \
	cp "$$tmp/node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js" $(GOVUK_DIR)/govuk-frontend.min.js; \
	sed -i 's|//# sourceMappingURL=.*||' $(GOVUK_DIR)/govuk-frontend.min.js; \
	echo "govuk-frontend $(GOVUK_FRONTEND), sass $(SASS): $(GOVUK_DIR)/govuk-frontend.min.css and .min.js"

clean:
	rm -rf $(VENV) quorum.db quorum.db-wal quorum.db-shm var
