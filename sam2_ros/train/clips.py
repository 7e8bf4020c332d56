"""Training clips: random scenes turned into Meta's ``BatchedVideoDatapoint``.

One clip is one random scene (``evaluation.random_scenes``), rendered at a random camera
size and resized to the model's square input exactly as the engine resizes camera frames
(``engine.preprocessing.frame_to_tensor``), so the model trains on the pixels it will see.
Targets are 1 to ``max_targets`` objects visible on the clip's first frame; the other
objects stay in the picture as distractors. A ``crossing_share`` of the clips come from the
crossing family (look-alikes that cross, swap, hide and return), always of the split the
caller names: training passes the train split, whose crossing seeds never meet the held-out
ones (the family and the split each have their own entropy tag). A ``variety`` share of
the clips are re-dressed by ``varied_scenes`` (new backdrops and clutter, flat objects,
zoom, warp, light, blur): training-side code only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from sam2_ros.engine.steps.preprocessing import frame_to_tensor
from sam2_ros.evaluation.random_scenes import (
    CROSSING_KINDS,
    RandomFrame,
    RandomScene,
    RandomSceneConfig,
    visible_ids,
)
from sam2_ros.train.varied_scenes import vary

#: Camera sizes a clip is rendered at (width, height): the demo's 4:3, square and portrait.
CAMERA_SIZES = ((320, 240), (256, 256), (240, 320), (384, 216))


@dataclass(frozen=True)
class ClipSettings:
    """What one training clip looks like."""

    num_frames: int = 8
    image_size: int = 256
    max_targets: int = 3
    min_target_area: int = 120  # pixels (camera size) on the first frame
    # Fewest objects in a scene, curriculum included. Why 2 can matter: in a scene of one
    # object "segment the foreground" is always right, so a model can learn to ignore the
    # prompt (a model that did: docs/demo_model.md, "What was tried before").
    min_objects: int = 2
    # Chance that a training scene has an occluder on one object's path; None: the
    # held-out scenes' chance (0.5). Only the training distribution changes: a fully hidden
    # target is the only frame where the occlusion head learns to answer "not visible", and
    # at 0.5 those are a few percent of the target frames.
    p_occlusion: float | None = None
    # Share of clips drawn from the crossing family (look-alikes crossing, swapping, hiding
    # and coming back: where identities get confused). 0 keeps every clip of a run as it was
    # before the option existed. Crossing clips have at least CROSSING_MIN_FRAMES frames.
    crossing_share: float = 0.0
    # Share of clips re-dressed by varied_scenes (backdrops of many kinds and scales,
    # clutter, flat objects, zoom, warp, light, blur); 0 leaves every clip as before.
    variety: float = 0.0

    def __post_init__(self) -> None:
        for name in ("crossing_share", "variety"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


#: The crossing family plans its events over at least this many frames (RandomSceneConfig).
CROSSING_MIN_FRAMES = 12


def scene_config(difficulty: float, min_objects: int = 1, p_occlusion: float | None = None,
                 **fields) -> RandomSceneConfig:
    """A random-scene config at a curriculum difficulty in [0, 1]: 1 is the full held-out
    distribution; lower values have fewer objects (never under ``min_objects``) and rarer
    occlusions, exits, distractors, shake and brightness changes. ``p_occlusion`` replaces
    the full distribution's occlusion chance (still scaled by the difficulty)."""
    d = float(np.clip(difficulty, 0.0, 1.0))
    full = RandomSceneConfig()
    most = max(min_objects, 1 + round((full.max_objects - 1) * d))
    occlusion = full.p_occlusion if p_occlusion is None else p_occlusion
    return RandomSceneConfig(
        min_objects=min_objects, max_objects=most,
        p_occlusion=occlusion * d, p_exit=full.p_exit * d,
        p_distractor=full.p_distractor * d, p_shake=full.p_shake * d,
        p_brightness=full.p_brightness * d, **fields,
    )


def is_crossing_clip(settings: ClipSettings, seed: int) -> bool:
    """Whether clip ``seed`` comes from the crossing family (never a single-frame clip: an
    image has no crossing). Its own generator, so that a share of 0 leaves every other draw
    of the clip (size, scene seed, targets) as it was."""
    share = settings.crossing_share
    return (share > 0 and settings.num_frames > 1
            and np.random.default_rng([0xC055, seed]).random() < share)


def is_varied_clip(settings: ClipSettings, seed: int) -> bool:
    """Whether clip ``seed`` is re-dressed by ``varied_scenes`` (its own generator, so a
    share of 0 leaves every other draw of the clip as it was)."""
    return settings.variety > 0 and np.random.default_rng([0x5A42, seed]).random() < (
        settings.variety)


def draw_scene(settings: ClipSettings, seed: int, split: str = "train",
               difficulty: float = 1.0) -> tuple[RandomScene, list[RandomFrame], list[int]]:
    """Clip ``seed``'s scene, its rendered frames and the target ids (no training deps)."""
    rng = np.random.default_rng([0xC11B, seed])
    crossing = is_crossing_clip(settings, seed)
    varied = is_varied_clip(settings, seed)
    family = "crossing" if crossing else "standard"
    num_frames = settings.num_frames
    if crossing:
        num_frames = max(num_frames, CROSSING_MIN_FRAMES)
    # A scene whose first frame shows no large enough object is redrawn (rare).
    for attempt in range(20):
        w, h = CAMERA_SIZES[int(rng.integers(len(CAMERA_SIZES)))]
        scene_seed = seed * 32 + attempt
        if crossing:  # the scene seed picks the kind (seed % 4): every kind, in turn by seed
            scene_seed = scene_seed * len(CROSSING_KINDS) + seed % len(CROSSING_KINDS)
        cfg = scene_config(difficulty, settings.min_objects, settings.p_occlusion, width=w,
                           height=h, num_frames=num_frames, seed=scene_seed,
                           split=split, family=family)
        scene = RandomScene(cfg)
        frames = vary(scene, scene_seed) if varied else list(scene.frames())
        candidates = visible_ids(frames[0].labels, settings.min_target_area)
        if candidates:
            most = 1 + round((settings.max_targets - 1) * min(1.0, difficulty))
            k = int(rng.integers(1, min(most, len(candidates)) + 1))
            targets = sorted(int(i) for i in rng.choice(candidates, k, replace=False))
            return scene, frames, targets
    raise RuntimeError(f"no usable clip for seed {seed}")


def sample_clip(settings: ClipSettings, seed: int, split: str = "train",
                difficulty: float = 1.0):
    """The clip of ``seed`` as a BatchedVideoDatapoint (imported lazily: training deps)."""
    from training.utils.data_utils import BatchedVideoDatapoint, BatchedVideoMetaData

    scene, frames, targets = draw_scene(settings, seed, split, difficulty)
    h, w = scene.cfg.height, scene.cfg.width
    size = settings.image_size
    images = torch.cat([frame_to_tensor(f.rgb, size, torch.device("cpu")) for f in frames])
    masks = torch.stack([
        torch.from_numpy(np.stack([_resize_mask(f.labels == oid, size) for oid in targets]))
        for f in frames
    ])  # T x O x S x S bool
    t, o = masks.shape[:2]
    frame_idx = torch.arange(t, dtype=torch.int32)[:, None].expand(t, o)
    obj_to_frame = torch.stack([frame_idx, torch.zeros_like(frame_idx)], dim=-1)
    ids = torch.tensor(targets, dtype=torch.long)
    identifier = torch.stack([
        torch.zeros(t, o, dtype=torch.long), ids[None, :].expand(t, o),
        torch.arange(t, dtype=torch.long)[:, None].expand(t, o)], dim=-1)
    orig = torch.tensor([h, w], dtype=torch.long).expand(t, o, 2)
    return BatchedVideoDatapoint(
        img_batch=images.unsqueeze(1),  # T x B(=1) x C x S x S
        obj_to_frame_idx=obj_to_frame,
        masks=masks,
        metadata=BatchedVideoMetaData(unique_objects_identifier=identifier,
                                      frame_orig_size=orig, batch_size=[t]),
        dict_key="sam2_ros",
        batch_size=[t],
    )


def _resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Nearest-neighbour resize of a bool mask to size x size (labels must stay labels)."""
    import cv2

    return cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST) > 0
