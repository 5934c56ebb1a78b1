# province-in-a-box: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST := $(BIN)/pytest
PROFILE ?= centralized
export PATH := $(abspath $(BIN)):/usr/local/go/bin:$(PATH)

.PHONY: deps demo lint test test-repeat test-static test-unit test-app test-lab bench-lab lab-down

deps:
	@VENV=$(VENV) scripts/bootstrap-controller.sh

## The main job: bring up the lab for a profile, deploy into it, say where to look.
demo: deps
	$(BIN)/pbox lab up --profile $(PROFILE)
	$(BIN)/pbox deploy
	$(BIN)/pbox lab status

lab-down: deps
	$(BIN)/pbox lab down

## Every test, in order: static checks, unit, app, lab. A red tier does not stop the later ones;
## the end lists every tier's result, and the exit status is red if any tier was.
test: deps
	@scripts/test-tiers.sh static unit app lab

## Hunting flakes: each non-lab tier N times in a row (default 10), with the counts at the end.
N ?= 10
test-repeat: deps
	@REPEAT=$(N) scripts/test-tiers.sh $(or $(TIERS),static unit app)

lint test-static: deps
	$(PYTEST) tests/static

test-unit: deps
	$(PYTEST) tests/unit

test-app: deps
	$(PYTEST) tests/app

# The lab tests run in two lanes at once, each with its own lab (PBOX_LAB_SLOT 1 and 2: own subnet,
# bridge and state), so one profile deploys while another is tested; the lanes hold about equal
# work. Each lane's output is printed whole when it ends, its slowest steps last. Every file of
# tests/lab belongs to exactly one lane (tests/static/test_lab_lanes.py).
LAB_LANE_1 := tests/lab/test_deploy_sites.py tests/lab/test_lab_hosts.py
LAB_LANE_2 := tests/lab/centralized tests/lab/test_national.py
test-lab: deps
	@$(MAKE) --no-print-directory -j2 --output-sync=target lab-lane-1 lab-lane-2

.PHONY: lab-lane-1 lab-lane-2
lab-lane-1 lab-lane-2: lab-lane-%:
	PBOX_LAB_SLOT=$* $(PYTEST) --durations=15 $(LAB_LANE_$*)

bench-lab: deps
	$(BIN)/python bench/lab_bench.py
