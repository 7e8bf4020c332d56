"""Detections to tracks (engine side, no ROS): IoU, the optimal one-to-one assignment, what a
detection message asks of the tracker, and the box history late detections are matched on."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sam2_ros.engine.detections import (
    BoxHistory,
    Detection,
    DetectionError,
    DetectionMatcher,
    DetectionPrompter,
    TrackView,
    box_iou,
    check_detections,
    match,
    xywh_to_box,
)

SEC = 1_000_000_000


def test_box_iou_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 10, 10]], dtype=float)
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]], dtype=float)
    iou = box_iou(a, b)
    assert iou.shape == (2, 3)
    np.testing.assert_allclose(iou[0], [1.0, 50 / 150, 0.0])
    assert xywh_to_box((2, 3, 4, 5)) == (2.0, 3.0, 6.0, 8.0)


def _boxes(rng: np.random.Generator, n: int) -> list[tuple[float, float, float, float]]:
    xy = rng.uniform(0, 40, size=(n, 2))
    wh = rng.uniform(8, 30, size=(n, 2))
    return [tuple(float(v) for v in (*p, *(p + s))) for p, s in zip(xy, wh, strict=True)]


def test_assignment_is_optimal_and_one_to_one() -> None:
    """Against every possible assignment of small random scenes: none allowed one is better
    (a greedy best-pair-first matching is not, on scenes like the first one)."""
    rng = np.random.default_rng(3)
    scenes = [([(0, 0, 10, 10), (6, 0, 16, 10)],  # greedy takes d0-t0 (0.82), leaves d1-t1 low
               [(1, 0, 11, 10), (-2, 0, 8, 10)])]
    scenes += [(_boxes(rng, 3), _boxes(rng, 4)) for _ in range(40)]
    for track_boxes, det_boxes in scenes:
        tracks = [TrackView(i, b, b) for i, b in enumerate(track_boxes)]
        dets = [Detection(b, 0.9) for b in det_boxes]
        iou = box_iou(np.array(det_boxes, float), np.array(track_boxes, float))
        got = match(dets, tracks)
        assert len(set(got.values())) == len(got)
        score = sum(iou[i, j] for i, j in got.items())
        best = 0.0
        for perm in itertools.permutations(range(len(dets)), len(tracks)):
            best = max(best, sum(iou[i, j] for j, i in enumerate(perm) if iou[i, j] >= 0.1))
        assert score == pytest.approx(best)
    assert match([Detection((0, 0, 10, 10), 0.9)], [TrackView(1, (50, 50, 60, 60), None)]) == {}


def test_labels_must_agree_where_both_have_one() -> None:
    track = TrackView(4, (0, 0, 10, 10), (0, 0, 10, 10), "cup")
    assert match([Detection((0, 0, 10, 10), 0.9, "bowl")], [track]) == {}
    assert match([Detection((0, 0, 10, 10), 0.9, "cup")], [track]) == {0: 0}
    assert match([Detection((0, 0, 10, 10), 0.9, "")], [track]) == {0: 0}


def test_plan_creates_refreshes_and_ignores() -> None:
    matcher = DetectionMatcher(min_score=0.5, refresh_iou=0.6, forget_after_s=0.0)
    tracks = [
        TrackView(1, (0, 0, 10, 10), (0, 0, 10, 10), "cup"),  # well covered: left alone
        TrackView(2, (30, 0, 40, 10), (30, 0, 40, 10)),  # drifted: refreshed
        TrackView(3, None, (60, 0, 70, 10), lost=True),  # lost: picked up again
    ]
    dets = [
        Detection((0, 0, 10, 11), 0.9, "cup"),
        Detection((33, 0, 43, 10), 0.8, "box"),
        Detection((61, 1, 71, 11), 0.7, "ball"),
        Detection((100, 100, 120, 120), 0.9, "can"),  # new
        Detection((200, 100, 220, 120), 0.2, "can"),  # below min_score
        Detection((1, 0, 11, 10), 0.9, "cup"),  # a second box on object 1: no duplicate
    ]
    plan = matcher.plan(5 * SEC, dets, tracks)
    assert [d.label for d in plan.create] == ["can"]
    assert plan.create[0].box == (100, 100, 120, 120)
    assert [(i, d.box) for i, d in plan.refresh] == [(2, (33, 0, 43, 10)), (3, (61, 1, 71, 11))]
    assert sorted(plan.matched) == [1, 2, 3]
    assert plan.ignored == 2
    assert plan.forget == []


def test_a_track_not_visible_on_the_frame_is_refreshed() -> None:
    matcher = DetectionMatcher(min_score=0.5, refresh_iou=0.5, forget_after_s=0.0)
    track = TrackView(7, None, (0, 0, 10, 10))  # occluded, last seen here
    plan = matcher.plan(SEC, [Detection((1, 1, 11, 11), 0.9)], [track])
    assert [i for i, _ in plan.refresh] == [7] and plan.create == []


def test_forget_after_counts_from_the_last_match() -> None:
    matcher = DetectionMatcher(min_score=0.5, refresh_iou=0.5, forget_after_s=2.0)
    a = TrackView(1, (0, 0, 10, 10), (0, 0, 10, 10))
    b = TrackView(2, (50, 0, 60, 10), (50, 0, 60, 10))
    det_a = Detection((0, 0, 10, 10), 0.9)
    assert matcher.plan(0, [det_a], [a, b]).forget == []  # b first seen now
    assert matcher.plan(2 * SEC, [det_a], [a, b]).forget == []  # exactly 2 s: kept
    assert matcher.plan(3 * SEC, [det_a], [a, b]).forget == [2]
    both = [det_a, Detection((50, 0, 60, 10), 0.9)]
    assert matcher.plan(4 * SEC, both, [a, b]).forget == []  # b matched again
    assert matcher.plan(5 * SEC, [det_a], [a, b]).forget == []
    # Frames where the detector saw nothing (empty messages) count towards forgetting.
    assert matcher.plan(7 * SEC, [], [a, b]).forget == [2]  # b unmatched since 4 s
    assert matcher.plan(8 * SEC, [], [a, b]).forget == [1, 2]
    never = DetectionMatcher(min_score=0.5, refresh_iou=0.5, forget_after_s=0.0)
    for t in range(100):
        assert never.plan(t * SEC, [det_a], [a, b]).forget == []


@pytest.mark.parametrize("label", ["", "cup"])
def test_identity_never_jumps_when_objects_cross_under_jitter_and_misses(label: str) -> None:
    """Two objects pass each other; the detector jitters its boxes and misses a third of
    them; tracks follow their own object. No detection of one object may ever prompt the
    other's track, also when both are of one class (the nearness stage is in play)."""
    rng = np.random.default_rng(0)
    matcher = DetectionMatcher(min_score=0.3, refresh_iou=0.7, forget_after_s=0.0)
    for step in range(200):
        t = step % 50
        truth = {1: (10.0 + 2 * t, 20.0), 2: (110.0 - 2 * t, 24.0)}  # top-left corners
        tracks = [TrackView(i, (x, y, x + 30, y + 30), (x, y, x + 30, y + 30), label)
                  for i, (x, y) in truth.items()]
        dets, owner = [], {}
        for i, (x, y) in truth.items():
            if rng.random() < 1 / 3:
                continue
            jx, jy, jw, jh = rng.normal(0, 3, size=4)
            det = Detection((x + jx, y + jy, x + 30 + jw, y + 30 + jh), 0.9, label)
            owner[id(det)] = i
            dets.append(det)
        plan = matcher.plan(step * SEC, dets, tracks)
        for object_id, det in plan.matched.items():
            assert owner[id(det)] == object_id, f"step {step}: a detection jumped tracks"
        assert plan.create == []


def test_check_detections_names_the_problem() -> None:
    hw = (100, 200)
    check_detections([Detection((-5, -5, 10, 10), 0.5)], hw)  # partly outside: fine
    check_detections([], hw)  # the detector saw nothing: fine
    bad = {
        "NaN": [Detection((0, 0, 10, 10), 0.5), Detection((0, float("nan"), 10, 10), 0.5)],
        "empty": [Detection((10, 0, 10, 10), 0.5)],
        "outside": [Detection((200, 0, 250, 10), 0.5)],
    }
    for words, dets in bad.items():
        with pytest.raises(DetectionError, match=words):
            check_detections(dets, hw)


def test_history_gives_each_track_on_the_named_frame() -> None:
    history = BoxHistory(capacity=4)
    history.add(10, {1: (0, 0, 10, 10), 2: (50, 0, 60, 10)})
    history.add(20, {1: (5, 0, 15, 10), 2: None})
    history.add(30, {1: (9, 0, 19, 10), 2: None})
    history.note(25, 3, (80, 0, 90, 10))  # created on a frame between two tracked ones
    views = {v.object_id: v for v in history.views(22, [1, 2, 3], {3: "cup"}, lost=[2])}
    assert views[1].box == (5, 0, 15, 10)  # frame 20: the last at or before 22
    assert views[2].box is None and views[2].last_box == (50, 0, 60, 10) and views[2].lost
    assert views[3].box == (80, 0, 90, 10) and views[3].label == "cup"  # first seen later
    assert history.views(40, [1], {})[0].box == (9, 0, 19, 10)
    history.add(40, {1: (12, 0, 22, 10), 2: None})
    # capacity: the oldest frame (10) is gone; where object 2 was last seen is remembered
    assert history.views(30, [2], {})[0].box is None
    assert history.views(30, [2], {})[0].last_box == (50, 0, 60, 10)
    history.forget([1])
    assert history.views(30, [1], {})[0].box is None


def test_history_remembers_where_a_long_lost_object_was_seen() -> None:
    history = BoxHistory(capacity=2)
    history.add(10, {1: (0, 0, 10, 10)})
    for stamp in (20, 30, 40):
        history.add(stamp, {1: None})
    view = history.views(40, [1], {})[0]
    assert view.box is None and view.last_box == (0, 0, 10, 10)
    history.retain([])
    assert history.views(40, [1], {})[0].last_box is None


def test_a_track_made_after_the_named_frame_is_placed_between_its_sightings() -> None:
    history = BoxHistory(capacity=10)
    for stamp in (10, 20, 30):
        history.add(stamp, {1: (0, 0, 10, 10)})  # frames tracked before object 2 existed
    history.note(10, 2, (0, 50, 10, 60))  # prompted on frame 10, re-tracked to frame 30
    history.note(30, 2, (40, 50, 50, 60))
    view = {v.object_id: v for v in history.views(20, [1, 2], {})}
    assert view[2].box == pytest.approx((20, 50, 30, 60))
    assert view[1].box == (0, 0, 10, 10)


def test_a_drifted_or_moved_track_is_matched_by_class_and_nearness() -> None:
    """Near tracks of the class match; an unseen (hidden or lost) one matches at any distance."""
    matcher = DetectionMatcher(min_score=0.5, refresh_iou=0.5, forget_after_s=0.0)
    tracks = [
        TrackView(1, (0, 0, 10, 10), (0, 0, 10, 10), "cup"),
        TrackView(2, None, (100, 0, 110, 10), "cup", lost=True),
    ]
    near = Detection((14, 0, 24, 10), 0.9, "cup")  # no overlap, 14 px away: track 1
    plan = matcher.plan(SEC, [near], tracks)
    assert [i for i, _ in plan.refresh] == [1] and plan.create == []
    far = Detection((60, 0, 70, 10), 0.9, "cup")  # 40 px from either: the unseen cup
    plan = matcher.plan(SEC, [far], tracks)
    assert [i for i, _ in plan.refresh] == [2] and plan.create == []
    seen = [tracks[0], TrackView(2, (100, 0, 110, 10), (100, 0, 110, 10), "cup")]
    assert matcher.plan(SEC, [far], seen).create == [far]  # both cups in view: a third
    other = Detection((14, 0, 24, 10), 0.9, "bowl")  # near, but another class: new
    assert matcher.plan(SEC, [other], tracks).create == [other]
    unlabelled = Detection((14, 0, 24, 10), 0.9, "")  # no class: overlap only
    assert matcher.plan(SEC, [unlabelled], tracks).create == [unlabelled]


class _Tracker:
    """What DetectionPrompter reads of a tracker, and a record of the prompts it gets."""

    def __init__(self) -> None:
        self.object_ids: list[int] = []
        self.latest_stamp = 30
        self.prompts: list[dict] = []

    def labels(self) -> dict[int, str]:
        return {i: "cup" for i in self.object_ids}

    def latest_results(self) -> list:
        return []

    def reset(self, ids) -> None:
        pass

    def add_prompt(self, object_id=None, box=None, stamp=None, label="", frame=None):
        from sam2_ros.engine.results import ObjectResult, PromptResult

        self.prompts.append({"object_id": object_id, "box": box, "stamp": stamp})
        new_id = object_id or len(self.object_ids) + 1
        if new_id not in self.object_ids:
            self.object_ids.append(new_id)
        x0, y0, x1, y1 = box
        result = ObjectResult(new_id, label, True, 1.0, 0.9, np.zeros((1, 1), bool),
                              (x0, y0, x1 - x0, y1 - y0), (0.0, 0.0), 100, 0)
        return PromptResult(new_id, stamp, 0, result, 0)


def test_an_object_made_while_a_frame_was_tracked_is_not_forgotten() -> None:
    """The worker reports a frame tracked before the object existed after the object was
    made: the object must still be matched by the next detection, not made twice."""
    prompter = DetectionPrompter(0.5, 0.5, 0.0, history_frames=30)
    tracker = _Tracker()
    prompter.on_frame(10, (100, 200), [], [])
    applied = prompter.apply(tracker, 10, [Detection((0, 0, 20, 20), 0.9, "cup")])
    assert [r.object_id for r, _ in applied.created] == [1]
    prompter.on_frame(20, (100, 200), [], [])  # tracked before object 1 was made
    again = prompter.apply(tracker, 20, [Detection((2, 0, 22, 20), 0.9, "cup")])
    assert again.created == [] and sorted(again.plan.matched) == [1]


def test_a_track_displaced_onto_another_class_is_matched_to_its_own_class_anywhere() -> None:
    """SAM's memory moved the triangle's track onto the circle while the triangle was out of
    view; the triangle comes back far away: its detection goes to the triangle's track (and
    re-prompts it), not to a new object, and the circle keeps its own track."""
    matcher = DetectionMatcher(min_score=0.5, refresh_iou=0.5, forget_after_s=0.0)
    tracks = [
        TrackView(1, (100, 100, 140, 140), (100, 100, 140, 140), "circle"),
        TrackView(3, (102, 101, 141, 139), (102, 101, 141, 139), "triangle"),  # on the circle
    ]
    circle = Detection((101, 100, 141, 140), 0.9, "circle")
    triangle = Detection((280, 20, 310, 60), 0.9, "triangle")  # 200 px away
    plan = matcher.plan(SEC, [circle, triangle], tracks)
    assert plan.matched == {1: circle, 3: triangle} and plan.create == []
    assert [i for i, _ in plan.refresh] == [3]
    # Without the circle's detection nothing says the triangle's track is displaced: the
    # far triangle is a new object (ids never move on distance alone).
    alone = matcher.plan(SEC, [triangle], tracks)
    assert alone.create == [triangle] and alone.matched == {}
