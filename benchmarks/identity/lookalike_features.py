"""How far apart the model keeps two look-alike objects: features of tracked object pairs.

Identity between look-alikes can only be kept by appearance while they are close (motion
cannot tell them apart there). This tracks training-split scenes (never the held-out ones)
with the engine (``tracking_mode: sam2``, fp32, each object clicked on the first frame) and,
on frames where two objects are both clearly visible, apart, and each on its own ground
truth, compares their object pointers, mask-pooled memory features and mask-pooled image
features by cosine similarity, grouped by look-alike or not and scene family. The row
"same object" compares each object with itself on its click frame: a pair of look-alikes
as similar as that is, to the memory, one object. Prints a Markdown table and the machine;
it reports, it asserts nothing. Results: docs/identity.md.

    python -m benchmarks.identity.lookalike_features [--scenes 8] [--frames 30] [--checkpoint PATH]
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass, field

import numpy as np

from benchmarks.common.machine import cpu_model
from sam2_ros.engine.identity.appearance import pooled as pooled_look
from sam2_ros.engine.identity.appearance import similarity

MEASURES = ("obj_ptr", "memory", "image")
LOOKALIKE_RGB = 60.0  # planned colours closer than this (Euclidean, 0-255) are look-alikes
APART_PX = 6  # the two ground-truth boxes are at least this far apart on both axes' union


@dataclass
class Group:
    """Cosine similarities of one kind of pair, per measure."""

    values: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m in MEASURES})

    def add(self, sims: dict[str, float]) -> None:
        for m, v in sims.items():
            self.values[m].append(v)

    def row(self, name: str) -> str:
        n = len(self.values[MEASURES[0]])
        if not n:
            return f"| {name} | 0 | - | - | - |"
        cells = []
        for m in MEASURES:
            q = np.percentile(self.values[m], [10, 50, 90])
            cells.append(f"{q[1]:.3f} ({q[0]:.2f}-{q[2]:.2f})")
        return f"| {name} | {n} | " + " | ".join(cells) + " |"


def pooled(features, mask: np.ndarray):
    """A C-vector: ``features`` (1 x C x h x w) averaged over ``mask`` (area-resized to
    h x w), as the tracker's look guard pools them."""
    import torch

    return pooled_look(features, torch.from_numpy(mask.astype(np.float32)))


def apart(a: np.ndarray, b: np.ndarray) -> bool:
    """The two masks' bounding boxes are separated by at least APART_PX pixels."""
    ya, xa = np.nonzero(a)
    yb, xb = np.nonzero(b)
    gap_x = max(xb.min() - xa.max(), xa.min() - xb.max())
    gap_y = max(yb.min() - ya.max(), ya.min() - yb.max())
    return max(gap_x, gap_y) >= APART_PX


def features_of(tracker, oid: int, index: int, gt: np.ndarray):
    """The object's three feature vectors on ring frame ``index`` (gt: its camera-size mask)."""
    out = tracker.memories[oid].output_at(index)
    image = tracker.ring_frames()[-1].backbone_fpn[-1]
    return {"obj_ptr": out.obj_ptr, "memory": pooled(out.maskmem_features, gt),
            "image": pooled(image, gt)}


def measure_scene(loaded, scene, groups: dict[str, Group], family: str, min_area: int) -> None:
    from sam2_ros.engine.streaming_tracker import StreamingTracker
    from sam2_ros.evaluation.davis_metrics import region_similarity
    from sam2_ros.evaluation.scene_eval import click_objects

    colours = {o.id: np.array(o.colour) for o in scene.objects}
    tracker = StreamingTracker(loaded, tracking_mode="sam2")
    ids: dict[int, int] = {}
    first: dict[int, dict] = {}
    for i, frame in enumerate(scene.frames()):
        result = tracker.track(frame.rgb, frame.stamp_ns)
        objects = result.objects
        if i == 0:
            ids = click_objects(tracker, frame.rgb, frame.labels, frame.stamp_ns, min_area)
            objects = tracker.latest_results()
        good = {}
        for obj in objects:
            gt = frame.labels == ids[obj.object_id]
            if gt.sum() >= min_area and obj.visible and region_similarity(obj.mask, gt) >= 0.5:
                feats = features_of(tracker, obj.object_id, result.frame_index, gt)
                good[obj.object_id] = (gt, feats)
        for oid, (_, feats) in good.items():
            if i == 0:
                first[oid] = feats
            elif oid in first:
                groups["same object, frame t vs click frame"].add(
                    {m: similarity(feats[m], first[oid][m]) for m in MEASURES})
        for a, b in itertools.combinations(sorted(good), 2):
            (gt_a, fa), (gt_b, fb) = good[a], good[b]
            if not apart(gt_a, gt_b):
                continue
            near = np.linalg.norm(colours[ids[a]] - colours[ids[b]]) < LOOKALIKE_RGB
            kind = "look-alike pair" if near else "differently coloured pair"
            groups[f"{family} scenes, {kind}"].add({m: similarity(fa[m], fb[m]) for m in MEASURES})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=8, help="training-split seeds per family")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--checkpoint", default=None, help="default: the bundled demo model")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--min-area", type=int, default=120, help="pixels: clearly visible")
    args = parser.parse_args(argv)

    import torch

    from sam2_ros.engine.model_loading import DEMO_MODEL, build_model
    from sam2_ros.evaluation.random_scenes import RandomScene, RandomSceneConfig

    torch.set_num_threads(args.threads)
    loaded = build_model(DEMO_MODEL, args.checkpoint, device="cpu", precision="fp32")
    names = ["same object, frame t vs click frame", "crossing scenes, look-alike pair",
             "standard scenes, look-alike pair", "standard scenes, differently coloured pair",
             "crossing scenes, differently coloured pair"]
    groups = {n: Group() for n in names}
    with torch.inference_mode():
        for family, seed in itertools.product(("crossing", "standard"), range(args.scenes)):
            cfg = RandomSceneConfig(num_frames=args.frames, seed=seed, split="train",
                                    family=family)
            measure_scene(loaded, RandomScene(cfg), groups, family, args.min_area)
    print(f"machine: {cpu_model()}, torch threads {args.threads}; weights: "
          f"{args.checkpoint or 'bundled ' + DEMO_MODEL}; training-split seeds "
          f"0..{args.scenes - 1} of each family, {args.frames} frames")
    print("\ncosine similarity, median (10th-90th percentile)\n")
    print("| pairs | samples (object- or pair-frames) | object pointer | memory features "
          "| image features |")
    print("|---|---|---|---|---|")
    for n in names:
        print(groups[n].row(n))
    print("\nsame object: one object, frame t against its click frame; pairs: two objects "
          "on one frame, both visible, apart and each tracked on its own ground truth")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
