"""Identity metrics on hand-made masks, and the crossing scenes they are measured on."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_ros.evaluation.identity_metrics import IdentityTally, identity_on_frame, label_ious
from sam2_ros.evaluation.random_scenes import CROSSING_KINDS, RandomScene, RandomSceneConfig


def _labels() -> np.ndarray:
    """Two 10x10 squares: id 1 on the left, id 2 on the right of a 20x40 image."""
    labels = np.zeros((20, 40), np.uint16)
    labels[5:15, 5:15] = 1
    labels[5:15, 25:35] = 2
    return labels


def _square(x0: int) -> np.ndarray:
    mask = np.zeros((20, 40), bool)
    mask[5:15, x0:x0 + 10] = True
    return mask


def test_label_ious_measure_each_ground_truth_id() -> None:
    labels = _labels()
    ious = label_ious(_square(10), labels)  # half on id 1, nothing on id 2
    assert ious == {1: pytest.approx(50 / 150)}
    assert label_ious(np.zeros((20, 40), bool), labels) == {}
    with pytest.raises(ValueError, match="shape"):
        label_ious(np.zeros((5, 5), bool), labels)


def test_a_mask_is_on_another_object_only_past_the_switch_iou_and_its_own() -> None:
    labels = _labels()
    assert identity_on_frame(_square(25), labels, own_id=1) == (0.0, 2)
    assert identity_on_frame(_square(5), labels, own_id=1) == (1.0, None)
    # A loose mask over the other (IoU 100/420 < 0.3) and a sliver of its own: no switch.
    loose = np.zeros((20, 40), bool)
    loose[:, 14:35] = True
    own, other = identity_on_frame(loose, labels, own_id=1)
    assert other is None and own < 0.05
    # Both objects covered alike (IoU 1/3 each): more on the other is needed, not as much.
    both = np.zeros((20, 40), bool)
    both[5:15, 5:35] = True
    assert identity_on_frame(both, labels, own_id=1)[1] is None
    assert identity_on_frame(None, labels, own_id=1) == (0.0, None)


def test_a_swap_counts_one_switch_per_object_and_the_frames_it_lasts() -> None:
    """Frames 0-1 right, frames 2-4 swapped (each id on the other's object)."""
    labels = _labels()
    tally = IdentityTally()
    for frame in range(5):
        swapped = frame >= 2
        tally.add_frame({1: _square(25 if swapped else 5), 2: _square(5 if swapped else 25)},
                        labels, {1: 1, 2: 2})
    assert tally.switches == 2
    assert [o.switches for o in tally.objects.values()] == [1, 1]
    assert tally.objects[1].switch_frames == [2]
    assert tally.kept_share == pytest.approx(4 / 10)
    # IDTP 2 per object, IDFP 3 (masks on the wrong one), IDFN 3 (own object missed).
    assert tally.idf1 == pytest.approx(2 * 4 / (2 * 4 + 6 + 6))
    totals = tally.as_dict()
    assert totals["switches"] == 2 and totals["objects"]["1"]["idf1"] == pytest.approx(0.4)


def test_leaving_and_coming_back_counts_again_and_hidden_frames_are_scored() -> None:
    labels = _labels()
    hidden = labels.copy()
    hidden[hidden == 1] = 0  # id 1 out of view
    tally = IdentityTally()
    frames = [(labels, _square(5)), (labels, _square(25)), (labels, _square(5)),
              (hidden, _square(25)), (hidden, None)]
    for gt, mask in frames:
        tally.add_frame({1: mask}, gt, {1: 1})
    rec = tally.objects[1]
    # On 2 at frames 1 and 3 (back on its own between): two switches; the hidden frame with
    # no mask keeps its identity and is no IDFN (nothing to find).
    assert (rec.switches, rec.scored_frames, rec.kept_frames) == (2, 5, 3)
    assert (rec.idtp, rec.idfp, rec.idfn) == (2, 2, 1)


def test_tracker_ids_map_to_ground_truth_ids() -> None:
    labels = _labels()
    tally = IdentityTally()
    tally.add_frame({7: _square(25)}, labels, {7: 2})
    assert tally.switches == 0 and tally.idf1 == 1.0


def _scene(seed: int, split: str = "heldout", family: str = "crossing") -> RandomScene:
    return RandomScene(RandomSceneConfig(num_frames=30, seed=seed, split=split, family=family))


def test_crossing_scenes_are_their_own_split_and_deterministic() -> None:
    first = next(_scene(0).frames()).rgb
    assert np.array_equal(first, next(_scene(0).frames()).rgb)
    assert not np.array_equal(first, next(_scene(0, family="standard").frames()).rgb)
    assert not np.array_equal(first, next(_scene(0, split="train").frames()).rgb)
    assert [_scene(s).kind for s in range(4)] == list(CROSSING_KINDS)
    with pytest.raises(ValueError, match="family"):
        RandomSceneConfig(family="nope").validate()


@pytest.mark.parametrize("seed", range(4))
def test_crossing_scenes_put_look_alikes_over_one_another(seed: int) -> None:
    """Every kind: all objects in view on the first frame (so all are clicked), near-equal
    colours, and a look-alike loses most of its pixels (hidden or out of view) on some
    frame while the others stay."""
    scene = _scene(seed)
    frames = list(scene.frames())
    ids = [o.id for o in scene.objects]
    colours = np.array([o.colour for o in scene.objects])
    assert np.abs(colours - colours[0]).max() < 40
    areas = {i: np.array([(f.labels == i).sum() for f in frames]) for i in ids}
    assert all(areas[i][0] >= 120 for i in ids)
    least = min(areas[i].min() / areas[i].max() for i in ids)
    assert least < 0.5, (scene.kind, least)


def test_evaluate_takes_a_scene_family_and_a_count() -> None:
    import argparse

    from sam2_ros.cli.main import scene_selection
    from sam2_ros.evaluation.random_scenes import HELDOUT_SCENES

    assert scene_selection("7") == ("standard", 7)
    assert scene_selection("crossing") == ("crossing", HELDOUT_SCENES)
    assert scene_selection("crossing:12") == ("crossing", 12)
    for bad in ("crossings", "crossing:x"):
        with pytest.raises(argparse.ArgumentTypeError):
            scene_selection(bad)


def test_reports_carry_identity_beside_j_and_f() -> None:
    from sam2_ros.evaluation.run_summary import RunTimeline, identity_line
    from sam2_ros.evaluation.scene_eval import EvalReport, SceneScore

    score = SceneScore(seed=0, objects=2, j=0.5, f=0.5, jf=0.5, id_switches=2, id_frames=10,
                       id_kept=4, idtp=4, idfp=6, idfn=6)
    report = EvalReport([score, SceneScore(seed=1, objects=1, j=1, f=1, jf=1, id_frames=10,
                                           id_kept=10, idtp=10)])
    assert report.id_switches == 2 and report.scenes_with_switch == 1
    assert report.identity_kept == pytest.approx(14 / 20)
    assert report.idf1 == pytest.approx(28 / 40)
    table = "\n".join(report.markdown())
    assert "identity switches" in table and "2 (in 1 of 2 scenes) | 70.0% | 0.700" in table

    class _Obj:  # the fields of an ObjectResult the timeline reads
        def __init__(self, object_id: int, mask: np.ndarray) -> None:
            self.object_id, self.mask, self.visible = object_id, mask, True
            self.label, self.score = "", 1.0

    timeline = RunTimeline()
    labels = _labels()
    for frame in range(3):
        objects = [_Obj(1, _square(25 if frame else 5)), _Obj(2, _square(25))]
        timeline.add_frame(frame, objects)
        timeline.add_ground_truth(objects, labels, {1: 1, 2: 2})
    summary = timeline.summary()
    assert summary["objects"][1]["identity_switches"] == 1
    assert summary["identity"]["switches"] == 1
    assert summary["identity"]["identity_kept"] == pytest.approx(4 / 6)
    assert "1 switch(es)" in identity_line(summary)


def test_verdict_names_what_was_measured_and_leaves_out_what_was_not() -> None:
    from sam2_ros.evaluation.run_summary import verdict_line

    live = {
        "frames_in": 60, "frames_processed": 57, "J&F_mean": 0.6081,
        "identity": {"switches": 2}, "engine_frame_ms_median": 181.4,
    }  # fmt: skip
    assert verdict_line(live) == (
        "verdict: 57/60 frames processed, J&F 0.608, 2 identity switch(es), engine 181 ms/frame"
    )
    offline = {"frames": 40, "engine_frame_ms_median": None}  # a replay without ground truth
    assert verdict_line(offline) == "verdict: 40 frames processed, no ground truth, no J&F"
