"""Per-object track state over time: tracking, occluded (briefly unseen) or lost.

SAM 2's occlusion head says, frame by frame, whether an object is visible. A planner wants
more: whether an unseen object is probably just behind something (occluded, keep waiting)
or gone (lost), and for how long it has not been seen. Shared by the node and bag replay.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

TRACKING, OCCLUDED, LOST = 0, 1, 2
STATE_NAMES = {TRACKING: "tracking", OCCLUDED: "occluded", LOST: "lost"}


@dataclass
class ObjectTrack:
    """What is remembered of one object between frames."""

    first_ns: int  # the first frame it was reported on
    last_seen_ns: int | None = None  # None: never visible yet
    unseen_frames: int = 0  # unseen frames not explained by an occluder (see update)


@dataclass
class TrackStates:
    """Track state of every object, updated once per processed frame."""

    occluded_frames: int = 30  # unseen for more frames than this: lost
    tracks: dict[int, ObjectTrack] = field(default_factory=dict)
    generation: int = 0  # the tracker's full resets: ids of an older one name other objects

    def update(
        self, stamp_ns: int, visible: dict[int, bool], generation: int = 0,
        covered: Collection[int] = (),
    ) -> dict[int, tuple[int, float]]:
        """Record one frame (object id -> visible); returns id -> (state, seconds since
        seen; an object never visible counts from its first frame).

        ``covered``: ids the identity policy judges hidden behind other objects (their
        predicted box is covered, ``ObjectResult.covered``). Such an object is occluded
        however long it stays behind them; only its unseen frames without an occluder
        count towards ``occluded_frames``.

        Objects missing from ``visible`` are forgotten (removed or reset); after a full
        reset of the tracker (``generation`` changed) all are, as ids start again at 1.
        """
        if generation != self.generation:
            self.tracks.clear()
            self.generation = generation
        for object_id in [i for i in self.tracks if i not in visible]:
            del self.tracks[object_id]
        out = {}
        for object_id, seen in visible.items():
            track = self.tracks.setdefault(object_id, ObjectTrack(first_ns=stamp_ns))
            behind = not seen and object_id in covered
            if seen:
                track.last_seen_ns, track.unseen_frames = stamp_ns, 0
            elif not behind:
                track.unseen_frames += 1
            since_ns = stamp_ns - (
                track.first_ns if track.last_seen_ns is None else track.last_seen_ns
            )
            if seen:
                state = TRACKING
            elif behind or track.unseen_frames <= self.occluded_frames:
                state = OCCLUDED
            else:
                state = LOST
            out[object_id] = (state, max(0.0, since_ns / 1e9))
        return out

    def lost_for(self, seconds: float, states: dict[int, tuple[int, float]]) -> list[int]:
        """Ids lost for longer than ``seconds`` (never seen counts from its first frame)."""
        return sorted(
            i for i, (state, since) in states.items() if state == LOST and since > seconds
        )
