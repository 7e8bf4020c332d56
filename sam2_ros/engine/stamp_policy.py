"""Which frame stamps the tracker takes: one rule for the engine, the node and the tools.

The tracker needs strictly increasing stamps: its kept frames are ordered by time and a
prompt names a frame by its stamp. A live stream breaks that in two different ways. A frame
reordered in transport, or sent by a second publisher, comes a little before the last one:
the objects are fine and only that frame is dropped. A looping bag, a restarted driver or a
simulation clock set back goes back by seconds: the stream starts over, and so must the
tracker. ``StampPolicy`` tells these apart with one threshold; the tracker owns one
instance (its last stamp), the node asks it before tracking and acts on the verdict.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

NS_PER_S = 1_000_000_000
#: Late frames in a row that mean the stream went back, however little: a bag shorter than
#: the threshold, looping. Reordering or a second publisher gives late frames between new ones.
LATE_RUN_RESTART = 5


class Verdict(enum.Enum):
    """What to do with a frame, judged by its stamp against the last tracked one."""

    NEW = "new"  # after the last frame (or the first frame): track it
    REPEAT = "repeat"  # the same stamp as the last frame: drop it
    LATE = "late"  # a little before the last frame (reordered, second publisher): drop it
    JUMP_BACK = "jump_back"  # far before (bag loop, restarted driver): start the stream over


@dataclass
class StampPolicy:
    """The last tracked stamp and the threshold between a late frame and a time jump.

    ``jump_back_ns``: a stamp at least this far before the last one is a jump back (0:
    every earlier stamp is). The owner (``StreamingTracker``) updates ``last`` under its
    lock; ``judge`` only reads it, so anyone may ask.
    """

    jump_back_ns: int = NS_PER_S
    last: int | None = None
    late_run: int = 0  # late frames since the last tracked one

    @classmethod
    def with_threshold(cls, seconds: float) -> StampPolicy:
        if seconds < 0:
            raise ValueError(f"time_jump_reset must be >= 0 seconds, got {seconds}")
        return cls(jump_back_ns=round(seconds * NS_PER_S))

    def judge(self, stamp: int) -> Verdict:
        last = self.last
        if last is None or stamp > last:
            return Verdict.NEW
        if stamp == last:
            return Verdict.REPEAT
        if last - stamp >= self.jump_back_ns or self.late_run + 1 >= LATE_RUN_RESTART:
            return Verdict.JUMP_BACK
        return Verdict.LATE

    def stamp_for(self, stamp: int | None) -> int:
        """``stamp``, or for a frame given without one, the next nanosecond after the last."""
        if stamp is None:
            return 0 if self.last is None else self.last + 1
        return int(stamp)

    def accept(self, stamp: int) -> None:
        self.last = stamp
        self.late_run = 0

    def note_late(self) -> None:
        """A frame judged LATE was dropped."""
        self.late_run += 1

    def forget(self) -> None:
        """A new stream: any stamp is accepted next."""
        self.last = None
        self.late_run = 0

    def explain(self, stamp: int, verdict: Verdict) -> str:
        """One sentence on why a frame with this verdict is not tracked as it is."""
        last = self.last
        if verdict is Verdict.REPEAT:
            return f"frame stamp {stamp} is the same as the previous frame's"
        gap = (last - stamp) / 1e9 if last is not None else 0.0
        if verdict is Verdict.LATE:
            return (
                f"frame stamp {stamp} is {gap:.3f} s before the previous frame's {last} "
                f"(reordered, or a second publisher on the topic?): frame dropped"
            )
        if verdict is Verdict.JUMP_BACK:
            if gap >= self.jump_back_ns / 1e9:
                return (
                    f"frame stamp {stamp} is {gap:.3f} s before the previous frame's {last} "
                    f"(time_jump_reset {self.jump_back_ns / 1e9:.3f} s)"
                )
            return (
                f"frame stamp {stamp} is {gap:.3f} s before the previous frame's {last}, "
                f"the {LATE_RUN_RESTART}th late frame in a row"
            )
        return f"frame stamp {stamp} is new"
