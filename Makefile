# province-in-a-box: the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST := $(BIN)/pytest
PROFILE ?= centralized
export PATH := $(abspath $(BIN)):/usr/local/go/bin:$(PATH)

.PHONY: deps demo lint test test-static test-unit test-app test-lab bench-lab lab-down

deps:
	@VENV=$(VENV) scripts/bootstrap-controller.sh

## The main job: bring up the lab for a profile, deploy into it, say where to look.
demo: deps
	$(BIN)/pbox lab up --profile $(PROFILE)
	$(BIN)/pbox deploy
	$(BIN)/pbox lab status

lab-down: deps
	$(BIN)/pbox lab down

## Every test, in order: static checks, unit, app, lab.
test: deps test-static test-unit test-app test-lab

lint test-static: deps
	$(PYTEST) tests/static

test-unit: deps
	$(PYTEST) tests/unit

test-app: deps
	$(PYTEST) tests/app

# The lab's slowest steps are printed at the end: where CI's time goes.
test-lab: deps
	$(PYTEST) --durations=25 tests/lab

bench-lab: deps
	$(BIN)/python bench/lab_bench.py
