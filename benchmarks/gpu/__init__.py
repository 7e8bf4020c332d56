"""The first lent GPU's checks (issue 39): ``checks`` does them, ``benchmarks/gpu.sh`` sets
the machine up from carried wheels and runs ``python -m benchmarks.gpu.checks``."""
