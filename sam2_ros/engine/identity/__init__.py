"""Identity-keeping tracking (``tracking_mode: motion``): motion, candidate choice, memory
admission and objects that exclude each other, as a policy the tracker calls."""
