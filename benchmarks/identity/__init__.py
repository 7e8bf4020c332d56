"""Benchmarks of how identities are kept: tracking_mode cost, ablations, look-alikes."""
