# Two entry points for a fresh machine; both set everything up first (tools/bootstrap.sh).
.PHONY: setup test demo lint

setup:
	tools/bootstrap.sh

test: setup
	bash -c '. tools/env.sh && cd test && python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)'

demo: setup
	bash -c '. tools/env.sh && sam2_ros demo $(DEMO_ARGS)'

lint: setup
	bash -c '. tools/env.sh && ruff check .'
