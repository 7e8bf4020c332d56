"""SAM 2's per-frame steps: a camera frame to SAM 2's input, the model's calls (encode,
attend, decode, remember), which objects share a call, and the batched path back to camera
size. The memory policy (what each object may attend to) lives beside, in ``engine``."""
