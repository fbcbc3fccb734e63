# `make dev` runs the stack locally; `make test` runs every check. Both set up .venv themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed

.PHONY: dev test lint chromium bench fuzz clean deploy bytecode

$(INSTALLED): requirements-dev.txt shared/requirements.txt local/lambda_runtime/lambda-runtime-requirements.txt pyproject.toml
	@echo "Setting up $(VENV): installing the packages of requirements-dev.txt and building the layer (on the first run, and when the requirements change; about 2 minutes)"
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[cli]'
	$(PY) -m local.lambda_runtime.layer >/dev/null
	touch $@

dev: $(INSTALLED)
	$(PY) -m local

lint: $(INSTALLED)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The browser tests drive Debian's chromium (Playwright's own browser downloads are not used). Installing it
# changes the system, so it is said first; NEWSDESK_SKIP_BROWSER=1 skips the browser tests instead (CI never).
CHROMIUM := /usr/bin/chromium

chromium:
	@if [ -n "$$NEWSDESK_SKIP_BROWSER" ]; then \
	  echo "NEWSDESK_SKIP_BROWSER is set: chromium is not installed and the browser tests will be skipped"; \
	elif [ ! -x $(CHROMIUM) ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=; elif command -v sudo >/dev/null; then sudo=sudo; \
	  else echo "$(CHROMIUM) is missing and installing it needs root or sudo: the browser tests will skip (and fail under CI)"; exit 0; fi; \
	  echo "The browser tests need Debian's chromium: installing it with $${sudo:+sudo }apt-get."; \
	  echo "To skip those tests instead: NEWSDESK_SKIP_BROWSER=1 make test"; \
	  $$sudo apt-get update && $$sudo env DEBIAN_FRONTEND=noninteractive \
	    apt-get install -y --no-install-recommends chromium; \
	fi

test: lint chromium
	$(PY) -m pytest -n auto --dist worksteal --durations=25

bench: $(INSTALLED)
	$(PY) -m bench

# Schemathesis against the local stack with FUZZ_EXAMPLES generated cases per operation (about 10,000
# requests); `make test` runs the same test CI-sized (40 per operation, at least 1,000 requests).
FUZZ_EXAMPLES ?= 400

fuzz: $(INSTALLED)
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest -m fuzz tests/e2e/test_fuzz.py

# `sam build` needs the template's runtime (python3.13) on the PATH; without it, it builds in SAM's Docker
# image instead. NEWSDESK_PARAMETERS (`SenderAddress=news@example.org SiteUrl=https://...`) become the
# stack's parameters, as they do for `make dev`; samconfig.toml holds the rest (stack name, capabilities).
# The check runs the interpreter: a pyenv shim answers `command -v python3.13` for a version pyenv knows
# and then fails when that version is not selected.
PYTHON313_RUNS = $(shell python3.13 -c 'import sys' 2>/dev/null && echo yes)
SAM_BUILD_FLAGS ?= $(if $(PYTHON313_RUNS),,--use-container)
SAM_DEPLOY_FLAGS ?=
# Then bytecode for what `sam build` built: Lambda cannot write any into /var/task or /opt, and SAM's zips
# date every file 1980-01-01, which no bytecode checked by date matches, so without it every module of the
# layer (botocore, pydantic, Powertools, the product) would be compiled again at every cold start. Bytecode
# checked against its source's hash stays valid whatever the date (PEP 552). It takes the runtime's Python:
# python3.13 when it runs, else SAM's build image (as `sam build --use-container` does).
BUILD_DIR ?= .aws-sam/build
SAM_BUILD_IMAGE ?= public.ecr.aws/sam/build-python3.13:latest-arm64
COMPILE := -m compileall -q -f -j 0 --invalidation-mode checked-hash
BYTECODE ?= $(if $(PYTHON313_RUNS),python3.13 $(COMPILE) $(BUILD_DIR),docker run --rm -v "$(abspath $(BUILD_DIR)):/build" $(SAM_BUILD_IMAGE) python $(COMPILE) /build)
# The region is never guessed: REGION=eu-west-1, else AWS_DEFAULT_REGION (what SAM CLI and boto3 read; they
# ignore AWS_REGION). A profile's own region does not count, so that a deploy never lands in a region
# nobody named.
REGION ?= $(AWS_DEFAULT_REGION)

deploy:
	$(if $(strip $(REGION)),,$(error make deploy needs a region: make deploy REGION=eu-west-1, or export AWS_DEFAULT_REGION (SAM CLI does not read AWS_REGION)))
	sam build $(SAM_BUILD_FLAGS)
	$(BYTECODE)
	sam deploy --region $(REGION) $(SAM_DEPLOY_FLAGS) $${NEWSDESK_PARAMETERS:+--parameter-overrides "$$NEWSDESK_PARAMETERS"}

# After a `sam build` of your own (before `sam deploy --guided`, say).
bytecode:
	$(BYTECODE)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
