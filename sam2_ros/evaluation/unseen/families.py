"""The held-out scene families nobody tuned on (``sam2_ros evaluate --scenes textured:N``).

Written independently of the training and tuning generators (``random_scenes``,
``synthetic_scene``): own shapes, renderer, motion and seeding, and held-out only (they
have no train split; nothing under ``sam2_ros.train`` imports this package, a test checks).
A family's scene yields frames with ``stamp_ns``, ``rgb`` and ``labels`` like the others.
"""

from __future__ import annotations

from sam2_ros.evaluation.unseen.clutter import ClutterScene
from sam2_ros.evaluation.unseen.textured import TexturedScene

#: Family name -> scene class (seed, num_frames, width, height).
UNSEEN_FAMILIES = {"textured": TexturedScene, "clutter": ClutterScene}


def unseen_scene(family: str, seed: int, num_frames: int = 30, width: int = 320,
                 height: int = 240) -> TexturedScene | ClutterScene:
    """Scene ``seed`` of an unseen family (320x240 like the demo camera).

    Raises:
        ValueError: for a family this package does not have.
    """
    if family not in UNSEEN_FAMILIES:
        raise ValueError(f"unknown unseen family {family!r}: one of {', '.join(UNSEEN_FAMILIES)}")
    return UNSEEN_FAMILIES[family](seed, num_frames, width, height)
