"""Several cameras in one node against a node per camera: ``python -m benchmarks.cameras``."""
