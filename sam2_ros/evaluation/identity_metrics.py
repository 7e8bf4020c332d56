"""Identity metrics: does each tracked id stay on the object it was clicked on?

J&F averages over objects and frames, so a run where two same-coloured objects swap ids
after crossing can still score a fair J&F while a planner grasping "object 1" takes the
wrong one. These numbers look at the identity alone, per object and over a run: identity
switches (a mask on another object's ground truth, IoU above ``SWITCH_IOU``), the share of
frames on which the identity is kept, and an IDF1-style share with the id fixed by the
click (a match is IoU >= ``MATCH_IOU``). Their exact definitions: docs/identity.md, "How
identity is measured".

Pure numpy; ``IdentityTally`` is fed one frame at a time by the run timeline (replay,
demo) and by the held-out evaluation, so all report the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

#: IoU with another object's ground truth above which (and above the IoU with its own)
#: a mask counts as on that other object.
SWITCH_IOU = 0.3
#: IoU with its own ground truth at which a mask counts as the right object (IDF1's match).
MATCH_IOU = 0.5


@dataclass
class ObjectIdentity:
    """One object's identity record over a run."""

    scored_frames: int = 0
    kept_frames: int = 0
    switches: int = 0
    idtp: int = 0
    idfp: int = 0
    idfn: int = 0
    # Ground-truth id the mask sat on at the last frame (None: on its own or nothing).
    on_other: int | None = None
    # Frame numbers (counted from the first scored frame) where each switch started.
    switch_frames: list[int] = field(default_factory=list)

    @property
    def kept_share(self) -> float:
        return self.kept_frames / self.scored_frames if self.scored_frames else 1.0

    @property
    def idf1(self) -> float:
        denom = 2 * self.idtp + self.idfp + self.idfn
        return 2 * self.idtp / denom if denom else 1.0


def label_ious(mask: np.ndarray, labels: np.ndarray) -> dict[int, float]:
    """IoU of a mask with every ground-truth id (> 0) present in the label image or under
    the mask; empty for an empty mask."""
    pred = np.asarray(mask, dtype=bool)
    if pred.shape != labels.shape:
        raise ValueError(f"mask shape {pred.shape} differs from labels {labels.shape}")
    area = int(pred.sum())
    if area == 0:
        return {}
    flat = labels.astype(np.int64, copy=False).ravel()
    size = int(flat.max()) + 1
    gt_area = np.bincount(flat, minlength=size)
    inter = np.bincount(flat[pred.ravel()], minlength=size)
    ids = np.nonzero(inter)[0]
    return {int(k): float(inter[k] / (area + gt_area[k] - inter[k])) for k in ids if k > 0}


def identity_on_frame(mask: np.ndarray | None, labels: np.ndarray, own_id: int) -> tuple[
        float, int | None]:
    """(IoU with its own ground truth, the other ground-truth id the mask sits on or None)."""
    if mask is None:
        return 0.0, None
    ious = label_ious(mask, labels)
    own = ious.get(own_id, 0.0)
    others = {k: v for k, v in ious.items() if k != own_id}
    if not others:
        return own, None
    other, best = max(others.items(), key=lambda kv: kv[1])
    return own, (other if best > SWITCH_IOU and best > own else None)


@dataclass
class IdentityTally:
    """Identity records of the objects of one run, fed frame by frame."""

    objects: dict[int, ObjectIdentity] = field(default_factory=dict)

    def add_frame(self, masks: Mapping[int, np.ndarray | None], labels: np.ndarray,
                  gt_ids: Mapping[int, int]) -> None:
        """One frame: ``masks`` maps tracker id -> reported mask (None when reported not
        visible), ``gt_ids`` tracker id -> ground-truth id (ids not in it are its own)."""
        present = set(np.unique(labels).tolist())
        for object_id, mask in masks.items():
            own_id = gt_ids.get(object_id, object_id)
            rec = self.objects.setdefault(object_id, ObjectIdentity())
            own_iou, other = identity_on_frame(mask, labels, own_id)
            if other is not None and other != rec.on_other:
                rec.switches += 1
                rec.switch_frames.append(rec.scored_frames)
            rec.on_other = other
            rec.scored_frames += 1
            rec.kept_frames += int(other is None)
            matched = mask is not None and own_iou >= MATCH_IOU
            reported = mask is not None and bool(np.any(mask))
            rec.idtp += int(matched)
            rec.idfp += int(reported and not matched)
            rec.idfn += int(own_id in present and not matched)

    # ------------------------------------------------------------------ totals
    @property
    def switches(self) -> int:
        return sum(o.switches for o in self.objects.values())

    @property
    def scored_frames(self) -> int:
        return sum(o.scored_frames for o in self.objects.values())

    @property
    def kept_frames(self) -> int:
        return sum(o.kept_frames for o in self.objects.values())

    @property
    def kept_share(self) -> float:
        scored = self.scored_frames
        return self.kept_frames / scored if scored else 1.0

    @property
    def idf1(self) -> float:
        tp = sum(o.idtp for o in self.objects.values())
        fp = sum(o.idfp for o in self.objects.values())
        fn = sum(o.idfn for o in self.objects.values())
        return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 1.0

    def merge(self, other: IdentityTally, offset: int = 0) -> None:
        """Add another run's records (ids shifted by ``offset`` so runs do not collide)."""
        for object_id, rec in other.objects.items():
            self.objects[object_id + offset] = rec

    def as_dict(self) -> dict:
        """Totals and per-object records (JSON-ready)."""
        return {
            "switches": self.switches,
            "scored_frames": self.scored_frames,
            "identity_kept": self.kept_share,
            "idf1": self.idf1,
            "objects": {
                str(i): {**asdict(o), "identity_kept": o.kept_share, "idf1": o.idf1}
                for i, o in sorted(self.objects.items())
            },
        }
