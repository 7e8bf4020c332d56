"""tracking_mode: the selective memory of mode motion, and the motion policy in the tracker
(bounded memory, motion replayed after a prompt on a past frame). Meta's mode is pinned by
test_engine_parity.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from sam2_ros.engine.memory_bank import FrameOutput, ObjectMemory, assemble_memory
from sam2_ros.evaluation.random_scenes import RandomScene, RandomSceneConfig
from sam2_ros.evaluation.scene_eval import click_objects


def _out(admitted: bool = True) -> FrameOutput:
    return FrameOutput(obj_ptr=torch.zeros(1, 4), object_score_logits=torch.ones(1, 1),
                       pred_masks=None, maskmem_features=torch.zeros(1, 2, 2, 2),
                       iou=torch.ones(1), admitted=admitted)


def test_selective_memory_attends_to_the_newest_admitted_frames() -> None:
    facts = SimpleNamespace(num_maskmem=4, max_cond_frames_in_attn=-1,
                            memory_temporal_stride_for_eval=1, use_obj_ptrs_in_encoder=False)
    obj = ObjectMemory(1)
    obj.cond[0] = _out()
    for index in range(1, 10):
        obj.non_cond[index] = _out(admitted=index not in (7, 8, 9))  # hidden at 7-9
    positional = assemble_memory(facts, obj, 10, torch.device("cpu"))
    selective = assemble_memory(facts, obj, 10, torch.device("cpu"), selective=True)
    by_frame = {id(o): i for i, o in {**obj.cond, **obj.non_cond}.items()}
    # SAM 2: the prompted frame and the last three frames, hidden ones included.
    assert [(by_frame[id(o)], slot) for o, slot in positional.spatial] == [
        (0, 3), (7, 2), (8, 1), (9, 0)]
    # Motion: the prompted frame and the three newest admitted, the nearest in slot 0.
    assert [(by_frame[id(o)], slot) for o, slot in selective.spatial] == [
        (0, 3), (6, 0), (5, 1), (4, 2)]


def test_pruning_keeps_admitted_frames_for_a_selective_memory() -> None:
    obj = ObjectMemory(1)
    for index in range(20):
        obj.non_cond[index] = _out(admitted=index < 5)
    obj.prune(keep_ptr_from=15, keep_mem_from=17, keep_mask_from=18, keep_admitted=3)
    assert sorted(obj.non_cond) == [2, 3, 4, *range(15, 20)]
    assert all(obj.non_cond[i].maskmem_features is not None for i in (2, 3, 4, 17))
    assert obj.non_cond[16].maskmem_features is None


def test_pruning_keeps_memory_features_only_for_frames_a_memory_attends() -> None:
    """Pointers of more admitted frames than memory frames are attended (15 against 6 in
    SAM 2.1): the older admitted frames keep their pointer, not their memory features."""
    obj = ObjectMemory(1)
    for index in range(20):
        obj.non_cond[index] = _out(admitted=index < 5)
    obj.prune(keep_ptr_from=15, keep_mem_from=17, keep_mask_from=18, keep_admitted=3,
              keep_admitted_memory=1)
    assert sorted(obj.non_cond) == [2, 3, 4, *range(15, 20)]
    assert [i for i in (2, 3, 4) if obj.non_cond[i].maskmem_features is not None] == [4]


@pytest.fixture(scope="module")
def demo_model():
    from sam2_ros.engine.model_loading import DEMO_MODEL, build_model

    torch.set_num_threads(2)
    return build_model(DEMO_MODEL, device="cpu", precision="fp32")


def test_motion_mode_tracks_with_bounded_state_and_replays_motion_after_a_past_prompt(
        demo_model) -> None:
    from sam2_ros.engine.streaming_tracker import StreamingTracker

    tracker = StreamingTracker(demo_model, prompt_history=4, tracking_mode="motion")
    scene = RandomScene(RandomSceneConfig(num_frames=14, seed=1, split="train",
                                          family="crossing"))
    frames = list(scene.frames())
    for i, frame in enumerate(frames):
        tracker.track(frame.rgb, frame.stamp_ns)
        if i == 0:
            ids = click_objects(tracker, frame.rgb, frame.labels, frame.stamp_ns, 120)
    assert len(ids) == 2
    newest = len(frames) - 1
    facts = demo_model.facts
    for object_id in ids:
        obj = tracker._objects[object_id]
        # Motion known up to the newest frame, none kept from before the ring but one.
        assert max(obj.motion) == newest
        assert len(obj.motion) <= tracker.prompt_history + 1
        bound = tracker._policy.keep_admitted + facts.max_obj_ptrs_in_encoder
        assert len(obj.non_cond) <= bound
    # A click on a past ring frame: motion restarts there and is re-tracked forward.
    past = frames[-3]
    object_id = next(iter(ids))
    x, y = np.argwhere(past.labels == ids[object_id]).mean(axis=0)[::-1]
    result = tracker.add_prompt(object_id, points=[[float(x), float(y)]], labels=[1],
                                stamp=past.stamp_ns)
    assert result.retracked_frames == 2
    obj = tracker._objects[object_id]
    assert obj.output_at(newest - 2).admitted
    assert obj.motion[newest - 2].updates == 1  # the filter starts again at the click
    assert {newest - 1, newest} <= set(obj.motion)


def test_objects_with_different_memories_decode_in_one_batch_as_alone(demo_model) -> None:
    """Objects whose memories differ in length (a selective memory, or prompts on different
    frames) share one decode call; memory attention is grouped by layout inside it, and
    each object's outputs equal its own unbatched decode."""
    from sam2_ros.engine.identity.policy import MotionSettings
    from sam2_ros.engine.results import StageTiming
    from sam2_ros.engine.streaming_tracker import StreamingTracker
    from sam2_ros.evaluation.synthetic_scene import SceneConfig, render_scene

    # Without the area and look guards every frame of both objects enters memory here, so
    # the two memories differ in length (what this test needs), as measured.
    tracker = StreamingTracker(demo_model, tracking_mode="motion",
                               motion=MotionSettings(admit_area=0.0, admit_appearance=0.0))
    cfg = SceneConfig(duration_s=0.6)  # 6 frames
    frames = list(render_scene(cfg))
    prompted: set[int] = set()
    for i, frame in enumerate(frames):
        tracker.track(frame.rgb, frame.stamp_ns)
        if i in (0, 3):  # objects prompted on two frames: memories of two lengths
            shown = [g for g in np.unique(frame.labels) if g and g not in prompted]
            for gt_id in shown[:1]:
                y, x = np.argwhere(frame.labels == gt_id).mean(axis=0)
                tracker.add_prompt(points=[[float(x), float(y)]], labels=[1],
                                   stamp=frame.stamp_ns)
                prompted.add(gt_id)
    assert len(prompted) == 2
    steps, ring_frame = tracker._steps, tracker.ring_frames()[-1]
    objects = [tracker.memories[i] for i in tracker.object_ids]
    memories = [steps.memory(o, ring_frame.index, selective=True) for o in objects]
    assert len({m.layout for m in memories}) > 1
    with torch.inference_mode():
        batched = steps.decode(ring_frame, memories, StageTiming(), candidates=True)
        for b, memory in enumerate(memories):
            alone = steps.decode(ring_frame, [memory], StageTiming(), candidates=True)
            for name in ("pred_masks", "high_res_masks", "ious", "obj_ptr",
                         "object_score_logits", "multi_low_res", "multi_ious", "tokens"):
                ours, own = getattr(batched, name)[b : b + 1], getattr(alone, name)
                assert torch.allclose(ours, own, atol=1e-4, rtol=0), name


#: A training-split crossing scene (never a held-out seed): object 1 leaves the frame and
#: comes back while its look-alike waits near where it left, 20 frames. Measured with the
#: bundled model (fp32, CPU): sam2 mode 1 identity switch, identity kept on 25 of 40
#: object-frames, J&F 0.608; motion mode 0 switches, 40 of 40, J&F 0.825.
CROSSING_SCENE = RandomSceneConfig(num_frames=20, seed=7, split="train", family="crossing")
MIN_MOTION_KEPT = 0.9
MIN_MOTION_JF = 0.6


def _score(loaded, mode: str):
    from sam2_ros.engine.streaming_tracker import StreamingTracker
    from sam2_ros.evaluation.scene_eval import score_run

    scene = RandomScene(CROSSING_SCENE)
    tracker = StreamingTracker(loaded, tracking_mode=mode)
    return score_run(((f.stamp_ns, f.rgb, f.labels) for f in scene.frames()), tracker)


def test_motion_keeps_both_identities_where_sam2_swaps_them(demo_model) -> None:
    from sam2_ros.engine.model_loading import DEMO_MODEL, build_model, resolve_config

    sam2 = _score(demo_model, "sam2")
    motion = _score(demo_model, "motion")
    noise = _score(build_model(str(resolve_config(DEMO_MODEL)), device="cpu",
                               precision="fp32"), "motion")
    for name, s in (("sam2", sam2), ("motion", motion), ("random weights", noise)):
        print(f"{name}: {s.id_switches} switch(es), identity kept {s.id_kept}/{s.id_frames}, "
              f"J&F {s.jf:.3f}")
    assert sam2.id_switches >= 1
    assert motion.id_switches == 0
    assert motion.id_kept / motion.id_frames >= MIN_MOTION_KEPT
    assert motion.jf >= MIN_MOTION_JF
    # Random weights keep no identity worth the name: an empty mask is "on no other
    # object", so the J&F condition is what they fail.
    assert not (noise.id_switches == 0 and noise.id_kept / noise.id_frames >= MIN_MOTION_KEPT
                and noise.jf >= MIN_MOTION_JF)


def _designed_scene_ends(loaded, **motion) -> dict[int, int | None]:
    """The designed demo scene (the rectangle passes in front of the circle), objects
    clicked on their first frames, every frame tracked: per clicked object, the ground-truth
    object its mask overlaps most at the last frame (IoU >= 0.5), None when it is hidden or
    on nothing."""
    from sam2_ros.engine.identity.policy import MotionSettings
    from sam2_ros.engine.streaming_tracker import StreamingTracker
    from sam2_ros.evaluation.identity_metrics import label_ious
    from sam2_ros.evaluation.synthetic_scene import SceneConfig, first_frame_prompts, render_scene

    cfg = SceneConfig(duration_s=6.0)
    tracker = StreamingTracker(loaded, tracking_mode="motion", motion=MotionSettings(**motion))
    prompts, clicked, frame = first_frame_prompts(cfg), {}, None
    for frame in render_scene(cfg):
        tracker.track(frame.rgb, frame.stamp_ns)
        for p in [p for p in prompts if p.frame_index == frame.index]:
            result = tracker.add_prompt(points=[list(p.point)], labels=[1], stamp=frame.stamp_ns)
            clicked[result.object_id] = p.obj_id
    ends = {}
    for result in tracker.latest_results():
        ious = label_ious(result.mask, frame.labels) if result.visible else {}
        best = max(ious, key=ious.get) if ious else None
        ends[clicked[result.object_id]] = best if best is not None and ious[best] >= 0.5 else None
    return ends


def test_motion_finds_the_circle_again_after_the_rectangle_passes_over_it(demo_model) -> None:
    """Measured (bundled model, CPU, fp32 and bf16, every frame and three patterns of
    20-30% dropped frames): with the area and look guards every id ends on its own object;
    without them the circle's id is hidden at the end (or on the rectangle), because the
    frames where its mask lay on the rectangle entered its memory and its filter."""
    guarded = _designed_scene_ends(demo_model)
    unguarded = _designed_scene_ends(demo_model, admit_area=0.0, admit_appearance=0.0)
    print(f"last frame, clicked object -> object under its mask: with the guards {guarded}, "
          f"without {unguarded}")
    assert guarded == {1: 1, 2: 2, 3: 3}
    assert unguarded[1] != 1


#: A training-split crossing scene (never a held-out seed): two look-alikes cross, the
#: nearer hiding the farther. Measured with the bundled model (fp32, CPU), motion mode, 30
#: frames: with the continuity bonus (default 0.1) 0 identity switches, identity kept on 60
#: of 60 object-frames, J&F 0.451; without it (0) 1 switch, 32 of 60, J&F 0.145: the hidden
#: object's near-tied claim took the region its occluder held on the frame before.
CONTESTED_SCENE = RandomSceneConfig(num_frames=30, seed=216, split="train", family="crossing")


def test_the_object_seen_on_the_frame_before_keeps_a_contested_region(demo_model) -> None:
    from sam2_ros.engine.identity.policy import MotionSettings
    from sam2_ros.engine.streaming_tracker import StreamingTracker
    from sam2_ros.evaluation.scene_eval import score_run

    def score(continuity: float):
        tracker = StreamingTracker(demo_model, tracking_mode="motion",
                                   motion=MotionSettings(continuity=continuity))
        frames = RandomScene(CONTESTED_SCENE).frames()
        return score_run(((f.stamp_ns, f.rgb, f.labels) for f in frames), tracker)

    with_bonus, without = score(0.1), score(0.0)
    for name, s in (("continuity 0.1", with_bonus), ("continuity 0", without)):
        print(f"{name}: {s.id_switches} switch(es), identity kept {s.id_kept}/{s.id_frames}, "
              f"J&F {s.jf:.3f}")
    assert with_bonus.id_switches == 0 and with_bonus.id_kept / with_bonus.id_frames >= 0.9
    assert without.id_switches >= 1 and without.id_kept < with_bonus.id_kept


def test_evaluate_prints_both_modes_side_by_side(tmp_path, capsys) -> None:
    import json

    from sam2_ros.cli.main import main

    path = tmp_path / "modes.json"
    assert main(["evaluate", "--scenes", "crossing:1", "--frames", "12", "--compare-modes",
                 "--precision", "fp32", "--device", "cpu", "--cpu-threads", "2",
                 "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "(crossing family)" in out and "| tracking_mode | J&F | identity switches" in out
    assert "\n| sam2 | " in out and "\n| motion | " in out
    data = json.loads(path.read_text())
    assert set(data) == {"sam2", "motion"} and "id_switches" in data["motion"]


#: A training-split crossing scene (never a held-out seed), its first 10 of 20 frames:
#: object 1 passes behind its larger neighbour, wholly hidden on frames 7 to 9. Measured
#: with the bundled model (fp32, CPU), motion mode without the area and look guards and the
#: continuity bonus: object 1 unseen from frame 6, its predicted box 43-49% under the
#: neighbour's mask on frames 6 to 9 (covered from 35%). With the defaults its click draws
#: a mask over the neighbour, it loses that region to the neighbour from frame 1 on (the
#: neighbour, seen on the frame before, has the continuity bonus) and stays hidden with no
#: box the filter trusts: a cost of the bonus, measured and accepted (docs/identity.md).
BEHIND_SCENE = RandomSceneConfig(num_frames=20, seed=4, split="train", family="crossing")


def test_an_object_hidden_behind_another_carries_its_predicted_box_in_motion_mode_only(
        demo_model) -> None:
    from sam2_ros.engine.identity.policy import MotionSettings
    from sam2_ros.engine.streaming_tracker import StreamingTracker

    frames = list(RandomScene(BEHIND_SCENE).frames())[:10]
    unguarded = MotionSettings(admit_area=0.0, admit_appearance=0.0, continuity=0.0)
    for mode, settings in (("motion", unguarded), ("motion", None), ("sam2", None)):
        tracker = StreamingTracker(demo_model, tracking_mode=mode, motion=settings)
        ids = {}
        for i, frame in enumerate(frames):
            result = tracker.track(frame.rgb, frame.stamp_ns)
            if i == 0:
                ids = click_objects(tracker, frame.rgb, frame.labels, frame.stamp_ns, 120)
        assert len(ids) == 2
        hidden_id = next(i for i, label in ids.items() if not (frame.labels == label).any())
        hidden = result.by_id()[hidden_id]
        other = result.by_id()[next(i for i in ids if i != hidden_id)]
        assert other.visible and other.predicted_box is None and not other.covered
        if mode == "sam2":
            assert hidden.predicted_box is None and not hidden.covered
            continue
        assert not hidden.visible
        if settings is None:
            continue
        assert hidden.covered
        x, y, w, h = hidden.predicted_box
        ox, oy, ow, oh = other.bbox
        # The predicted box overlaps the neighbour that hides the object.
        assert x < ox + ow and ox < x + w and y < oy + oh and oy < y + h


def test_settings_build_takes_motion_settings_for_ablations(demo_model) -> None:
    """benchmarks/identity/unseen_ablation.py switches motion's parts off through build(motion=);
    without it the node's motion_* parameters apply."""
    from sam2_ros.engine.identity.policy import MotionSettings
    from sam2_ros.settings import TrackerSettings

    settings = TrackerSettings(tracking_mode="motion", motion_continuity=0.2)
    assert settings.build(demo_model)._policy.settings.continuity == 0.2
    ablated = settings.build(demo_model, MotionSettings(continuity=0.0, reacquire_iou=2.0))
    assert (ablated._policy.settings.continuity, ablated._policy.settings.reacquire_iou) == (
        0.0, 2.0)


@pytest.mark.parametrize("mode", ["sam2", "motion"])
def test_memory_features_kept_stay_within_the_documented_bound(tiny_model, frames,
                                                               mode: str) -> None:
    """max_objects' text: at most prompt_history + 7 + max_prompt_frames memory frames per
    object, 6 more in motion mode (its admitted frames before the ring)."""
    from sam2_ros.engine.streaming_tracker import StreamingTracker

    tracker = StreamingTracker(tiny_model, prompt_history=2, max_prompt_frames=2,
                               tracking_mode=mode)
    stamps = iter(range(100, 1000))
    for i in range(40):
        tracker.track(frames[i % len(frames)], next(stamps))
        if i in (0, 1, 2):
            tracker.add_prompt(object_id=1 if i else None, points=[[20.0 + i, 24.0]],
                               labels=[1])
    obj = tracker.memories[1]
    kept = [o for o in (*obj.cond.values(), *obj.non_cond.values())
            if o.maskmem_features is not None]
    bound = 2 + 7 + 2 + (6 if mode == "motion" else 0)
    assert 0 < len(kept) <= bound
