# Two entry points for a fresh machine; both set everything up first (tools/bootstrap.sh).
.PHONY: setup train-deps test demo train train-shipped lint bench speed bench-cameras gpu

setup:
	tools/bootstrap.sh

# Meta's training package needs a few more packages (requirements/train.txt); they go into
# .train-site/ beside the venv, never into it. A stamp skips the install when nothing changed.
train-deps: setup .train-site/.stamp
.train-site/.stamp: requirements/train.txt
	.venv/bin/python -m pip install --quiet --disable-pip-version-check --target .train-site --no-deps --upgrade -r requirements/train.txt
	cp requirements/train.txt $@

test: setup train-deps
	bash -c '. tools/env.sh && cd test && SAM2_ROS_TRAIN_SITE=$(CURDIR)/.train-site python -m pytest -q -rs -p no:cacheprovider $(PYTEST_ARGS)'

# Train a demo model with the default recipe (about 1.5 hours on 2 CPU cores; resumable:
# run it again to go on). `make train-shipped` reproduces the bundled one.
train: setup train-deps
	bash -c '. tools/env.sh && PYTHONPATH=$(CURDIR)/.train-site:$$PYTHONPATH sam2_ros train $(TRAIN_ARGS)'

# The shipped demo model: two named presets (sam2_ros/train/presets.py, one line of why per
# value): shipped-base, the default recipe stopped at step 8,800, then shipped-finetune from
# its weights (full difficulty, more occlusions, heavier object-score and IoU losses, then
# 600 steps on the IoU and object-score heads). 2.3 to 3 hours on 2 CPU cores; each part
# resumes when run again. TRAIN_ARGS=--install installs the result.
train-shipped: setup train-deps
	bash -c '. tools/env.sh && export PYTHONPATH=$(CURDIR)/.train-site:$$PYTHONPATH && sam2_ros train --preset shipped-base && sam2_ros train --preset shipped-finetune $(TRAIN_ARGS)'

demo: setup
	bash -c '. tools/env.sh && sam2_ros demo $(DEMO_ARGS)'

lint: setup
	bash -c '. tools/env.sh && ruff check .'

# Benchmarks (about 10 minutes on 2 CPU cores); transformers goes beside the venv. They run
# from this folder as a package, so they time this checkout's sam2_ros (docs/benchmarks.md).
bench: setup
	.venv/bin/python -m pip install --quiet --disable-pip-version-check --target .bench-site --no-deps -r requirements/bench.txt
	bash -c '. tools/env.sh && SAM2_BENCH_HF_SITE=$(CURDIR)/.bench-site python -m benchmarks.run $(BENCH_ARGS)'

# Speed tables: ours vs Meta fp32 / bf16 autocast / vos_optimized, 1-4-8 objects, 256 and
# 512 px, GFLOP/s against the CPU's peak (about 15 minutes on 2 CPU cores).
speed: setup
	bash -c '. tools/env.sh && python -m benchmarks.speed $(SPEED_ARGS)'

# Several cameras in one node against one node process per camera: 1, 2, 3 cameras, 256 px,
# 20 s each (about 6 minutes on 2 CPU cores); the table of docs/benchmarks.md.
bench-cameras: setup
	bash -c '. tools/env.sh && cd /tmp && PYTHONPATH=$$PYTHONPATH:$(CURDIR) python -m benchmarks.cameras $(CAMERAS_ARGS)'

# A lent GPU's checks (benchmarks/gpu.sh --run checks|versus_meta, docs/benchmarks.md). Here first
# `make gpu GPU_ARGS="--build-wheels --device cpu --tiny"` (wheels into .whl/, tiny run).
gpu:
	bash benchmarks/gpu.sh $(GPU_ARGS)
