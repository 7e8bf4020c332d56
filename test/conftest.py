"""Shared fixtures: a tiny random-weight SAM 2 model and a short synthetic video.

The model is SAM 2.1 tiny at image_size 64 with random weights (seeded), so a frame costs
well under 0.1 s on the CPU. Its masks mean nothing, but every computation is
deterministic, which is all the engine tests need: they compare trackers with each other.

Torch runs on one intra-op thread: on a small shared machine (2 cores, other jobs running)
two OpenMP threads spin against each other and a frame can take 10x longer, while one
thread costs only a little when the machine is idle. TEST_TORCH_THREADS overrides it.

Tests stop the processes they start with SIGINT, as Ctrl-C would. A shell starts a
background job (``make test &``) with SIGINT ignored, which every child would inherit;
Python's own handler is put back here, so children start with the default again.
"""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from sam2_ros.engine.model_loading import LoadedModel, build_model
from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

TINY_MODEL = "sam2.1_hiera_t"
TINY_IMAGE_SIZE = 64
FRAME_H = 48
FRAME_W = 64


TEST_TORCH_THREADS = int(os.environ.get("TEST_TORCH_THREADS", "1"))


@pytest.fixture(scope="module", autouse=True)
def _torch_threads() -> None:
    """Each test module starts with TEST_TORCH_THREADS torch threads: a module that asks
    for more sets them itself, and its count does not leak into the modules after it."""
    torch.set_num_threads(TEST_TORCH_THREADS)


@pytest.fixture(scope="session")
def tiny_model() -> LoadedModel:
    """SAM 2.1 tiny, random weights (torch seed 0), image_size 64, on the CPU."""
    torch.manual_seed(0)
    return build_model(TINY_MODEL, image_size=TINY_IMAGE_SIZE, device="cpu", precision="fp32")


@pytest.fixture(scope="session")
def _scene_frames() -> tuple[np.ndarray, ...]:
    cfg = SceneConfig(width=FRAME_W, height=FRAME_H, fps=4.0, duration_s=3.0, with_depth=False)
    rgb = tuple(f.rgb for f in render_scene(cfg))
    assert len(rgb) == 12
    for frame in rgb:
        frame.setflags(write=False)  # shared by every test: nobody may change them
    return rgb


@pytest.fixture
def frames(_scene_frames: tuple[np.ndarray, ...]) -> list[np.ndarray]:
    """12 RGB uint8 frames of 48x64 (read-only arrays; a fresh list per test)."""
    return list(_scene_frames)
