"""What the benchmarks share, one module per job.

``machine`` (what the machine is, how loaded, the quiet gate), ``stats`` (per-frame
statistics), ``scene`` (the synthetic scene as JPEGs), ``engines`` (ours and Meta's predictor
behind one interface, and the lockstep), ``hf`` (transformers' streaming model) and
``runner`` (child processes and result files).
"""
