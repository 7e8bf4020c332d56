# Two entry points for a fresh machine; both set everything up first (tools/bootstrap.sh).
.PHONY: setup test demo lint bench

setup:
	tools/bootstrap.sh

test: setup
	bash -c '. tools/env.sh && cd test && python -m pytest -q -rs -p no:cacheprovider $(PYTEST_ARGS)'

demo: setup
	bash -c '. tools/env.sh && sam2_ros demo $(DEMO_ARGS)'

lint: setup
	bash -c '. tools/env.sh && ruff check .'

# Benchmarks (about 10 minutes on 2 CPU cores); transformers goes beside the venv.
bench: setup
	.venv/bin/python -m pip install --quiet --disable-pip-version-check --target .bench-site --no-deps -r requirements/bench.txt
	bash -c '. tools/env.sh && cd /tmp && SAM2_BENCH_HF_SITE=$(CURDIR)/.bench-site python $(CURDIR)/benchmarks/run.py $(BENCH_ARGS)'
