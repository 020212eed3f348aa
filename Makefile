# The two commands a user needs are `make lab` and `make test`; the rest are
# the pieces they are made of. Everything runs from the checkout: the venv,
# the Consul binary and the node images live in $(PICLUSTER_CACHE).
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PICLUSTER_CACHE ?= /var/cache/picluster
export PICLUSTER_CACHE
VENV := $(shell . scripts/lib.sh && echo $$VENV_DIR)
CONSUL_BIN := $(shell . scripts/lib.sh && echo $$CONSUL_BIN)
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PICLUSTER_CONSUL_BIN := $(CONSUL_BIN)
LAB ?= lab
MASTERS ?= 1
NODES ?= 5
# The lab's command line (lab/picluster_lab/cli.py); standard library only.
LAB_CLI := python3 lab

.PHONY: help setup lab lab-up lab-down lab-status lab-check test lint sanity unit integration molecule bench clean

help:
	@echo "make lab      bring up the local Pi lab ($(MASTERS) master + $(NODES) nodes), run site.yml on it, show its state"
	@echo "make test     every test: linters, ansible-test sanity, unit, integration, molecule"
	@echo "make lab-down remove the lab"
	@echo "make bench    benchmarks (results under bench/results and docs/benchmarks.md)"

setup:
	@bash scripts/setup.sh all

lab-up: setup
	@$(LAB_CLI) up --name $(LAB) --masters $(MASTERS) --nodes $(NODES)

lab: lab-up
	@$(LAB_CLI) check --name $(LAB)
	@$(LAB_CLI) images load --name $(LAB)
	ansible-playbook -i "$$($(LAB_CLI) inventory --name $(LAB))" playbooks/site.yml
	ansible-playbook -i "$$($(LAB_CLI) inventory --name $(LAB))" playbooks/demo.yml
	@$(LAB_CLI) state --name $(LAB)

lab-status:
	@$(LAB_CLI) state --name $(LAB)

lab-check:
	@$(LAB_CLI) check --name $(LAB)

lab-down:
	@$(LAB_CLI) down --name $(LAB)

# --- tests ------------------------------------------------------------------
test: setup
	@bash scripts/setup.sh arm
	@bash scripts/test.sh

lint:
	@bash scripts/test.sh lint

sanity:
	@bash scripts/test.sh sanity

unit:
	@bash scripts/test.sh unit

integration:
	@bash scripts/test.sh integration

molecule:
	@bash scripts/test.sh molecule

bench: setup
	@bash scripts/bench.sh

clean:
	rm -rf build .pytest_cache .ruff_cache
