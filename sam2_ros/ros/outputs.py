"""Node outputs that message_building does not cover: 3D positions from depth, RViz markers,
the diagnostics summary and throttled warnings. ROS message classes are imported where they
are used so this module also loads where visualization_msgs or diagnostic_msgs are missing."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from sam2_ros.engine.results import ObjectResult
from sam2_ros.imaging.codec import ImageDecodeError
from sam2_ros.imaging.geometry import CameraIntrinsics, object_position
from sam2_ros.imaging.overlay import object_color

Position = tuple[float, float, float]


class CameraInfoError(ValueError):
    """A camera_info whose K cannot project pixels (all zero: an uncalibrated camera)."""

    kind = "camera_info K unusable"


def depth_positions(
    results: Sequence[ObjectResult],
    depth_m: np.ndarray,
    k: Sequence[float],
    info_wh: tuple[int, int],
) -> dict[int, Position]:
    """Position of every visible object from a float32 metre depth image (NaN = invalid).

    ``k`` and ``info_wh`` are CameraInfo's K and (width, height); K is rescaled when the
    CameraInfo belongs to another resolution than the depth image. Raises
    ImageDecodeError for a depth image without a single valid pixel and CameraInfoError for
    an uncalibrated K, so the caller can warn and publish without positions.
    """
    height, width = depth_m.shape
    if not np.isfinite(depth_m).any():
        raise ImageDecodeError(
            f"depth image ({width}x{height}) has no valid pixel (all NaN, zero or negative): "
            "no 3D positions for this frame", "no valid depth")
    try:
        intr = CameraIntrinsics.from_k(k)
    except ValueError as exc:
        raise CameraInfoError(
            f"camera_info K is not usable (uncalibrated camera?): {exc}") from exc
    info_w, info_h = info_wh
    if info_w > 0 and info_h > 0 and (info_w, info_h) != (width, height):
        intr = intr.scaled(width / info_w, height / info_h)
    positions: dict[int, Position] = {}
    for r in results:
        if r.visible and r.area > 0:
            pos = object_position(r.mask, depth_m, intr)
            if pos is not None:
                positions[r.object_id] = pos
    return positions


def build_markers(header, results: Sequence[ObjectResult], positions: Mapping[int, Position]):
    """MarkerArray: DELETEALL, then a sphere and a text label per positioned object."""
    from visualization_msgs.msg import Marker, MarkerArray

    def marker(ns: str, object_id: int, kind: int, at: Position) -> Marker:
        m = Marker(header=header, ns=ns, id=int(object_id), type=kind, action=Marker.ADD)
        m.pose.position.x, m.pose.position.y, m.pose.position.z = at
        m.pose.orientation.w = 1.0
        return m

    markers = [Marker(header=header, action=Marker.DELETEALL)]
    labels = {r.object_id: r.label for r in results}
    for object_id in sorted(positions):
        x, y, z = positions[object_id]
        b, g, r = object_color(object_id)
        sphere = marker("sam2_objects", object_id, Marker.SPHERE, (x, y, z))
        sphere.scale.x = sphere.scale.y = sphere.scale.z = 0.1
        sphere.color.r, sphere.color.g, sphere.color.b = r / 255, g / 255, b / 255
        sphere.color.a = 0.9
        text = marker("sam2_labels", object_id, Marker.TEXT_VIEW_FACING, (x, y - 0.1, z))
        text.scale.z = 0.08
        text.color.r = text.color.g = text.color.b = text.color.a = 1.0
        label = labels.get(object_id, "")
        text.text = f"{object_id} {label}".strip() + f" ({z:.2f} m)"
        markers += [sphere, text]
    return MarkerArray(markers=markers)


def failure_kind(exc: BaseException) -> str:
    """What kind of failure ``exc`` is, in words that stay the same between occurrences:
    the codec's ``kind`` (its messages embed byte counts and sizes), else the exception's
    type. Warnings are throttled and counted by it."""
    return getattr(exc, "kind", None) or type(exc).__name__


class WarnThrottle:
    """One warning per kind of problem per period, with a count of the repeats left out.

    Keyed by the kind of failure, never by its text: texts embed stamps and byte counts,
    so one fault repeated on every frame would make a new key (and a warning) each time.
    At most ``max_kinds`` kinds are remembered (the least recently seen is forgotten), so
    a stream of ever new kinds cannot grow it without bound.
    """

    def __init__(
        self, logger, period_s: float = 5.0, max_kinds: int = 64,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._logger = logger
        self._period = period_s
        self._max_kinds = max_kinds
        self._clock = clock
        self._last: OrderedDict[str, tuple[float, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._last)

    def warn(self, kind: str, text: str, level: str = "warning") -> None:
        """Log ``text`` at ``level`` ("warning" or "error") unless the same
        ``kind`` was logged less than a period ago."""
        now = self._clock()
        with self._lock:
            last, skipped = self._last.pop(kind, (None, 0))
            if last is not None and now - last < self._period:
                self._last[kind] = (last, skipped + 1)
                return
            self._last[kind] = (now, 0)
            while len(self._last) > self._max_kinds:
                self._last.popitem(last=False)
        more = f" ({skipped} more like it since the last warning)" if skipped else ""
        # One call site per severity: rclpy's logger refuses a call site whose severity
        # changes between calls.
        if level == "error":
            self._logger.error(text + more)
        else:
            self._logger.warning(text + more)


#: Largest age (seconds) of a frame's header stamp at publication taken as a latency: a
#: live camera's frames are far younger; older stamps come from another clock.
MAX_STAMP_AGE_S = 60.0


class NodeStats:
    """Rolling statistics of processed frames for the diagnostics message, and the node's
    recent failures.

    Failures are judged over the last ``window_s`` seconds, so /diagnostics describes the
    recent past: a frame that failed an hour ago does not keep the node at ERROR.
    """

    def __init__(
        self, window: int = 200, window_s: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.window_s = window_s
        self._frames: deque[tuple[float, float, dict[str, float]]] = deque(maxlen=window)
        self.bad_messages = 0
        self.frames_failed = 0
        self.time_resets = 0
        self.late_frames = 0
        self._failures: deque[float] = deque(maxlen=1000)
        self._bad: deque[tuple[float, str]] = deque(maxlen=1000)
        self._last_tracked = -float("inf")
        self._last_snapshot = (clock(), 0, 0)

    def frame_done(
        self, received: float, done: float, timing: Mapping[str, float],
        stamp_age_s: float | None = None,
    ) -> None:
        """One processed frame: receive/done monotonic times, stage times and, when the
        clock allows, its age at publication measured from the header stamp. An age outside
        ``[0, MAX_STAMP_AGE_S]`` was not measured against the stamps' clock (a bag replayed
        without its /clock, two machines' clocks apart): it is left out, and the latency
        reported is from receipt to publication."""
        stages = dict(timing)
        if stamp_age_s is not None and 0.0 <= stamp_age_s <= MAX_STAMP_AGE_S:
            stages["stamp_age"] = stamp_age_s
        with self._lock:
            self._frames.append((done, done - received, stages))
            self._last_tracked = self._clock()

    def bad_message(self, kind: str = "bad message") -> None:
        """A message ignored as unusable; ``kind`` as ``failure_kind`` names it."""
        with self._lock:
            self.bad_messages += 1
            self._bad.append((self._clock(), kind))

    def frame_failed(self) -> None:
        """A frame whose processing raised (a bug or a device fault, not bad input)."""
        with self._lock:
            self.frames_failed += 1
            self._failures.append(self._clock())

    def problems(self) -> tuple[list[str], list[str]]:
        """(warnings, errors) of the last ``window_s`` seconds for /diagnostics.

        ERROR while frames fail and none was tracked since the last failure; WARN once
        frames are tracked again, until the failures leave the window; OK after. Bad
        messages in the window are a warning with their kinds."""
        now = self._clock()
        since = now - self.window_s
        warnings, errors = [], []
        with self._lock:
            failures = [t for t in self._failures if t > since]
            bad: dict[str, int] = {}
            for t, kind in self._bad:
                if t > since:
                    bad[kind] = bad.get(kind, 0) + 1
            tracked_since = bool(failures) and self._last_tracked > failures[-1]
        window = f"in the last {self.window_s:.0f} s"
        if failures and not tracked_since:
            errors.append(f"frames failing: {len(failures)} {window} (see the log)")
        elif failures:
            warnings.append(f"{len(failures)} frames failed {window}, tracking again")
        if bad:
            kinds = ", ".join(f"{kind} x{count}" for kind, count in sorted(bad.items()))
            warnings.append(f"messages ignored {window}: {kinds}")
        return warnings, errors

    def time_reset(self) -> None:
        with self._lock:
            self.time_resets += 1

    def late_frame(self) -> None:
        """A frame dropped for a stamp not after the previous frame's (reordered)."""
        with self._lock:
            self.late_frames += 1

    def snapshot(self, received: int, dropped: int) -> dict[str, float]:
        """Rates and means since the previous snapshot (latency and stage means in ms)."""
        now = self._clock()
        with self._lock:
            since, prev_received, prev_dropped = self._last_snapshot
            self._last_snapshot = (now, received, dropped)
            recent = [f for f in self._frames if f[0] > since]
            elapsed = max(now - since, 1e-6)
            out = {
                "input_rate_hz": (received - prev_received) / elapsed,
                "output_rate_hz": len(recent) / elapsed,
                "dropped_in_period": float(dropped - prev_dropped),
                "latency_ms": 1000 * float(np.mean([f[1] for f in recent])) if recent else 0.0,
                "bad_messages": float(self.bad_messages),
                "frames_failed": float(self.frames_failed),
                "time_resets": float(self.time_resets),
                "late_frames": float(self.late_frames),
            }
            for stage in ("encoder", "memory_attention", "decoder", "memory_encoder", "total"):
                values = [f[2].get(stage, 0.0) for f in recent]
                out[f"{stage}_ms"] = 1000 * float(np.mean(values)) if values else 0.0
            ages = [f[2]["stamp_age"] for f in recent if "stamp_age" in f[2]]
            out["latency_from_stamp_ms"] = 1000 * float(np.mean(ages)) if ages else 0.0
            return out


def build_diagnostics(
    header,
    name: str,
    hardware_id: str,
    stats: Mapping[str, float],
    extra: Mapping[str, str],
    warnings: Sequence[str],
    errors: Sequence[str] = (),
):
    """A DiagnosticArray with one status for /diagnostics (diagnostic_aggregator and
    rqt_robot_monitor read it): ERROR when ``errors``, WARN when ``warnings``, else OK."""
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    values = [
        KeyValue(key=k, value=f"{v:.3f}" if isinstance(v, float) else str(v))
        for k, v in stats.items()
    ]
    values += [KeyValue(key=k, value=str(v)) for k, v in extra.items()]
    summary = (
        f"tracking {stats['output_rate_hz']:.1f} Hz of {stats['input_rate_hz']:.1f} Hz input, "
        f"latency {stats['latency_from_stamp_ms'] or stats['latency_ms']:.0f} ms"
    )
    if errors:
        level = DiagnosticStatus.ERROR
    elif warnings:
        level = DiagnosticStatus.WARN
    else:
        level = DiagnosticStatus.OK
    status = DiagnosticStatus(
        level=level,
        name=name,
        message="; ".join([*errors, *warnings, summary]),
        hardware_id=hardware_id,
        values=values,
    )
    return DiagnosticArray(header=header, status=[status])
