# Everything a payments engineer runs. `make demo` and `make test` are the two that matter;
# both work on a fresh machine (they build their own virtualenvs and start their own services).
SHELL := /bin/bash
.DEFAULT_GOAL := help

ENV ?= dev
# The Lambda runtime is python3.12: find a 3.12 that really runs (pyenv shims may not).
PY312 ?= $(shell for p in "$$(PYENV_VERSION=3.12.1 pyenv which python 2>/dev/null)" python3.12; do \
  "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 12)' 2>/dev/null && { command -v "$$p"; break; }; done)
PY_TOOLS ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
TOOLS := .venv-tools
PY := $(VENV)/bin/python
# pip on these machines points at local wheel folders that may not exist; keep its noise out.
PIP_QUIET := 2>&1 | { grep -v -e "is ignored: it is neither" || true; }

.PHONY: help venv tools mariadb lint typecheck validate unit integration test demo sandbox \
        sandbox-down invoke bench build deploy-primary deploy-secondary sync drctl clean \
        local-invoke sam-local-check container-runtime container-runtime-down drill drill-loop

help: ## list targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -F':.*?## ' '{printf "  %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements/runtime.txt requirements/dev.txt pyproject.toml
	@test -n "$(PY312)" || { echo "python3.12 not found: install it or set PY312=/path/to/python3.12"; exit 1; }
	@test -x $(PY) || $(PY312) -m venv $(VENV)
	@set -o pipefail; $(PY) -m pip install -q -r requirements/dev.txt -e . $(PIP_QUIET)
	@$(PY) -c "import aws_lambda_powertools, moto, pymysql, hypothesis"
	@touch $@

venv: $(VENV)/.installed ## runtime/test virtualenv (python3.12)

$(TOOLS)/.installed: requirements/tools.txt
	@test -x $(TOOLS)/bin/python || $(PY_TOOLS) -m venv $(TOOLS)
	@set -o pipefail; $(TOOLS)/bin/pip install -q -r requirements/tools.txt $(PIP_QUIET)
	@$(TOOLS)/bin/sam --version >/dev/null && $(TOOLS)/bin/checkov --version >/dev/null
	@touch $@

tools: $(TOOLS)/.installed ## static-gate virtualenv (SAM CLI, cfn-lint, checkov)

mariadb: ## make sure a MariaDB server binary is installed (installs it from apt when root)
	@$(PY312) ops/sandbox/ensure_mariadb.py

lint: venv ## ruff
	$(VENV)/bin/ruff check src ops tests bench
	$(VENV)/bin/ruff format --check src ops tests bench

typecheck: venv ## mypy
	$(VENV)/bin/mypy

validate: tools ## sam validate (plain and --lint), cfn-lint on every template, checkov
	@bash ops/ci/validate.sh

unit: venv ## unit tests (fakes, no services)
	$(VENV)/bin/pytest tests/unit -q

integration: venv mariadb ## integration tests (moto + real MariaDB started by the tests)
	$(VENV)/bin/pytest tests/integration -q

# The sam local invoke test (tests/integration/test_sam_local.py) needs a container engine: as
# root with apt, docker.io/debootstrap/socat are installed here and the test starts and stops a
# private dockerd; otherwise this says why and the test skips, saying so too.
test: venv tools mariadb lint typecheck validate ## everything CI runs
	@$(PY) -m ops.sandbox.container_runtime install || echo "(sam local invoke test will skip)"
	$(VENV)/bin/pytest -q --durations=12

sandbox: venv mariadb ## start the local sandbox (moto server + MariaDB on loopback)
	@$(PY) -m ops.sandbox up

sandbox-down: ## stop what `make sandbox` started (by PID)
	@test -x $(PY) && $(PY) -m ops.sandbox down || true

invoke: sandbox ## run FN=<LogicalId> with EVENT=<file> in-process against the sandbox
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=PaymentProcessorFunction EVENT=events/charge_usd.json"; exit 2; }
	@$(PY) -m ops.sandbox invoke $(FN) $(EVENT)

demo: sandbox ## every sample event through the real handler, then a short DR drill
	@$(PY) -m ops.sandbox demo
	@echo ""
	@echo "A short DR drill: the primary region killed under a stream of payments, then drctl"
	@echo "failover, failback and switchover (make drill runs the full one; README 'The drill')."
	@$(PY) -m ops.sandbox drill --short

# The DR drill (README "The drill"): the real drctl against the sandbox under a stream of
# payments. SEED=n randomises the plan; drill-loop runs RUNS seeded drills in a row.
PAYMENTS ?= 1000
RUNS ?= 20
drill: sandbox ## failover + failback + switchover under >= 1,000 payments; .sandbox/drill-report.json
	@$(PY) -m ops.sandbox drill --payments $(PAYMENTS) $(if $(SEED),--seed $(SEED))

drill-loop: sandbox ## RUNS (20) seeded drills in a row from SEED (1), PAYMENTS (300) each
	@$(PY) -m ops.sandbox drill-loop --runs $(RUNS) --first-seed $(or $(SEED),1) \
	  --payments $(if $(filter command line,$(origin PAYMENTS)),$(PAYMENTS),300)

# sam local invoke against the sandbox (README "With Docker"); ops/sandbox/sam_local.py is the
# only place its command line is written.
local-invoke: tools sandbox ## FN=<LogicalId> EVENT=<file> through sam local invoke (Docker)
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make local-invoke FN=PaymentProcessorFunction EVENT=events/01_charge_usd.json"; exit 2; }
	@$(PY) -m ops.sandbox.sam_local invoke $(FN) $(EVENT)

sam-local-check: tools sandbox ## every events/*.json through sam local invoke vs make invoke
	@$(PY) -m ops.sandbox.sam_local check

container-runtime: venv ## a Docker engine + local Lambda image (root on Debian/Ubuntu; ~2 min)
	@$(PY) -m ops.sandbox.container_runtime ensure

container-runtime-down: ## stop the private dockerd `make container-runtime` started (by PID)
	@test -x $(PY) && $(PY) -m ops.sandbox.container_runtime stop || true

bench: sandbox ## handler vs raw-call floor, import time vs bare boto3
	@$(PY) -m bench.run

# Aurora's server certificate is verified against the RDS CA bundle, packaged with the functions
# (DB_TLS_CA_FILE in template.yaml). Fetched at build time; not kept in git.
RDS_CA_URL ?= https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
RDS_CA := src/shared/certs/rds-global-bundle.pem

$(RDS_CA):
	@mkdir -p $(dir $@)
	@curl -fsSL --max-time 60 "$(RDS_CA_URL)" -o $@.tmp && mv $@.tmp $@ || { rm -f $@.tmp; \
	  echo "could not fetch the RDS CA bundle from $(RDS_CA_URL): put it at $@ (or set RDS_CA_URL)"; exit 1; }

build: tools $(RDS_CA) ## sam build (python3.12 must be on PATH for SAM's binary check)
	PATH="$(dir $(PY312)):$$PATH" $(TOOLS)/bin/sam build

deploy-primary: build ## sam deploy to us-east-1
	$(TOOLS)/bin/sam deploy --config-env primary

deploy-secondary: build ## sam deploy to us-west-2
	$(TOOLS)/bin/sam deploy --config-env secondary

ROLE ?= primary
sync: venv tools ## sam sync --code --watch on the dev ROLE=primary|secondary stack (not staging/prod)
	PATH="$(dir $(PY312)):$$PATH" $(VENV)/bin/drctl sync --env $(ENV) --role $(ROLE)

drctl: venv ## run the operator CLI: make drctl ARGS="deploy --env dev --dry-run"
	$(VENV)/bin/drctl $(ARGS)

clean: sandbox-down container-runtime-down
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache .hypothesis .sandbox-docker
