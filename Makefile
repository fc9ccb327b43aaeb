# modeldeploy: `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STATE_DIR ?= $(HOME)/.cache/modeldeploy/clusters/default
PYTEST_ARGS ?=

.PHONY: help install binaries peers node-deps images lint unit fuzz mutation integration test cluster-up cluster-down demo crds bench

help: ## List the targets with what each does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/.installed: pyproject.toml devtools/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./devtools
	touch $@

install: $(BIN)/.installed ## Create the virtualenv: modeldeploy with its dev tools, and the harness (devtools/)

binaries: install ## Find or build etcd, Kubernetes (with kubelet, kube-proxy), kwok, helm, argocd-lua, Traefik, CoreDNS and Prometheus into the version-stamped cache
	$(BIN)/modeldeploy-dev binaries

peers: install ## Find or build the benchmark peers, Argo Rollouts and Flagger (only `make bench BENCH_ARGS=--peers` uses them)
	$(BIN)/modeldeploy-dev peers

IMAGES ?=
images: install ## Build (or find cached) the real node's images with podman: pause, Debian base, operator, model server, gateway (IMAGES="pause debian": only those)
	$(BIN)/modeldeploy-dev images $(IMAGES)

node-deps: ## Install the real node's Debian packages (containerd, runc, CNI plugins, iptables, podman, mmdebstrap); quick when present
	devtools/scripts/node-deps.sh

lint: install ## ruff, mypy --strict on the package, import-linter's layering contract
	$(BIN)/ruff check operator devtools tests
	$(BIN)/ruff format --check operator devtools tests
	$(BIN)/mypy
	$(BIN)/lint-imports

unit: install ## The pure tier: fast, no processes (property tests derandomized: Hypothesis profile ci)
	$(BIN)/pytest -m unit --hypothesis-profile=ci $(PYTEST_ARGS)

fuzz: install ## The property tests of the pure tier with 20 times the examples, random, no time limit (profile fuzz)
	$(BIN)/pytest -m "unit and hypothesis" --hypothesis-profile=fuzz --timeout=0 $(PYTEST_ARGS)

MUTATION_ARGS ?=
mutation: install ## Mutation score of plan/ and kube/apply.py, killed by the unit tier (mutmut, in build/mutation; MUTATION_ARGS="modeldeploy.plan.routes*" runs a part)
	rm -rf build/mutation && mkdir -p build/mutation
	cp -r operator build/mutation/src
	cp -r tests pyproject.toml examples charts crds argocd build/mutation/
	cd build/mutation && ../../$(BIN)/mutmut run $(MUTATION_ARGS); \
		../../$(BIN)/mutmut export-cicd-stats >/dev/null 2>&1; ../../$(BIN)/mutmut results

# Two pytest sessions side by side, each with its own cluster (tests/conftest.py marks real_node):
# lines prefixed [kwok] and [real node], each session's whole output also in build/integration-<session>.log.
# Exit 5 (no test selected, say by PYTEST_ARGS="-k ...") counts as a pass for one session, not for both.
# The last lines repeat both sessions' FAILED and ERROR summaries: a CI log that keeps only its tail
# still names what failed.
INTEGRATION_SESSION = $(BIN)/pytest -m "integration and $(1)" --durations=20 $(PYTEST_ARGS) 2>&1 \
	| tee build/integration-$(3).log | sed -u 's/^/[$(2)] /'
integration: node-deps binaries images ## The integration tier: the kwok cluster's and the real node's tests as two sessions side by side (or KUBECONFIG with MODELDEPLOY_USE_EXISTING_CLUSTER=1)
	@set -o pipefail; started=$$(date +%s); mkdir -p build; \
	$(call INTEGRATION_SESSION,real_node,real node,real-node) & real_pid=$$!; \
	$(call INTEGRATION_SESSION,not real_node,kwok,kwok); kwok=$$?; \
	wait $$real_pid; real=$$?; \
	for session in kwok real-node; do \
		grep -E '^(FAILED|ERROR) ' build/integration-$$session.log | cut -c1-400 | sed "s/^/== $$session: /"; \
	done; \
	echo "== integration: kwok session exit $$kwok, real-node session exit $$real, $$(( $$(date +%s) - started ))s"; \
	if [ $$kwok = 5 ] && [ $$real = 5 ]; then exit 5; fi; \
	for code in $$kwok $$real; do if [ $$code != 0 ] && [ $$code != 5 ]; then exit 1; fi; done

test: lint unit integration ## Lint, then both test tiers: the README's test command

cluster-up: binaries ## Start the local control plane and Prometheus; prints PROMETHEUS_URL and, last, KUBECONFIG
	@$(BIN)/modeldeploy-dev up --state-dir $(STATE_DIR)

cluster-down: install ## Stop the local control plane; no process is left behind
	@$(BIN)/modeldeploy-dev down --state-dir $(STATE_DIR)

crds: install ## Regenerate the CRD (and the chart's copy) and the chart's admission policies from the API models
	$(BIN)/python -m modeldeploy.api.crd > crds/modeldeployment.yaml
	cp crds/modeldeployment.yaml charts/modeldeploy/crds/modeldeployment.yaml
	$(BIN)/python -m modeldeploy.api.admission > charts/modeldeploy/templates/admission-policies.yaml

DEMO_ARGS ?=
demo: node-deps binaries images ## Show a model rollout on the real node (MLServer pods behind the Traefik gateway): a better model promoted, a worse one rolled back by accuracy (DEMO_ARGS=--fast)
	$(BIN)/python -m modeldeploy_dev.demo $(DEMO_ARGS)

BENCH_ARGS ?=
bench: binaries ## Benchmarks: convergence vs baseline, API cost, footprint, canaries (N=1000: BENCH_ARGS="--n 100 300 1000")
	$(BIN)/python -m modeldeploy_dev.bench $(BENCH_ARGS)
