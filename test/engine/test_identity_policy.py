"""The parts of tracking_mode motion on hand-made data: the box filter, the choice among
candidate masks, objects claiming one region, SAM 2's non-overlap constraint, and looks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam2_ros.engine.identity.appearance import pooled, similarity
from sam2_ros.engine.identity.candidates import box_iou, choose_candidate, mask_box
from sam2_ros.engine.identity.motion_filter import BoxState
from sam2_ros.engine.identity.overlap import claim_losers, claim_strength, exclusive_logits
from sam2_ros.engine.identity.policy import make_policy


def _moving_boxes(steps: int, start=(10.0, 20.0), velocity=(3.0, -1.0), size=(8.0, 6.0)):
    for t in range(steps):
        x = start[0] + velocity[0] * t
        y = start[1] + velocity[1] * t
        yield np.array([x, y, x + size[0], y + size[1]])


def test_the_filter_learns_a_constant_velocity_and_coasts_through_a_gap() -> None:
    boxes = list(_moving_boxes(16))
    state = BoxState.start(boxes[0])
    for box in boxes[1:12]:
        state = state.predict().update(box)
    # Hidden for four frames: the prediction carries on at the learnt velocity.
    ahead = state.predict(4)
    assert np.allclose(ahead.box, boxes[15], atol=1.0)
    assert box_iou(ahead.box, boxes[15]) > 0.75
    # A box that starts at rest predicts it stays.
    still = BoxState.start(boxes[0]).predict(3)
    assert np.allclose(still.box, boxes[0])
    # Uncertainty grows while coasting and shrinks with measurements.
    assert np.trace(ahead.cov) > np.trace(state.cov)


def test_box_helpers() -> None:
    a = np.array([0.0, 0.0, 10.0, 10.0])
    assert box_iou(a, a) == 1.0
    assert box_iou(a, np.array([5.0, 0.0, 15.0, 10.0])) == pytest.approx(50 / 150)
    assert box_iou(a, np.array([20.0, 20.0, 30.0, 30.0])) == 0.0
    mask = np.zeros((8, 8), bool)
    mask[2:4, 3:7] = True
    assert mask_box(mask).tolist() == [3, 2, 7, 4]
    assert mask_box(np.zeros((4, 4), bool)) is None


def test_motion_breaks_the_tie_between_look_alike_candidates() -> None:
    """Two candidates score alike by predicted IoU; the one where the object is predicted
    to be wins; without a prediction (or weight 0) the choice is SAM 2's."""
    here, there = np.array([0.0, 0.0, 10.0, 10.0]), np.array([30.0, 0.0, 40.0, 10.0])
    ious = np.array([0.90, 0.88, 0.2])
    boxes = [there, here, None]
    assert choose_candidate(ious, boxes, None, 0.25) == (0, 1.0)
    assert choose_candidate(ious, boxes, here, 0.0)[0] == 0
    pick, motion = choose_candidate(ious, boxes, here, 0.25)
    assert (pick, motion) == (1, 1.0)
    # A much better mask elsewhere still wins at a small weight.
    assert choose_candidate(np.array([0.95, 0.3, 0.1]), boxes, here, 0.25)[0] == 0


def test_the_weaker_of_two_objects_claiming_one_region_loses() -> None:
    a = np.zeros((10, 10), bool)
    a[2:8, 2:8] = True
    b = a.copy()
    b[2:8, 7:9] = True  # almost the same region
    c = np.zeros((10, 10), bool)
    c[0:2, 0:2] = True  # elsewhere
    none = np.zeros((10, 10), bool)
    # The per-pixel split gave the shared region to b: a keeps nothing of its own.
    split = [none, b, c]
    assert claim_losers([a, b, c], split, [True] * 3, [0.6, 0.9, 0.1]) == {0}
    assert claim_losers([a, b, c], split, [True] * 3, [0.9, 0.6, 0.1]) == {1}
    # An object already reported hidden claims nothing.
    assert claim_losers([a, b], [none, b], [False, True], [0.9, 0.6]) == set()
    # A small overlap is not a claim on one region.
    d = np.zeros((10, 10), bool)
    d[6:10, 6:10] = True
    assert claim_losers([a, d], [a, d], [True, True], [0.9, 0.1]) == set()


def test_a_mask_drawn_inside_another_objects_mask_is_the_hidden_one() -> None:
    """An object hidden behind a larger one, drawn by the decoder on part of it: it loses
    whatever the claims (its own logits won those pixels), the occluder keeps its mask."""
    big = np.zeros((20, 20), bool)
    big[2:18, 2:18] = True
    small = np.zeros((20, 20), bool)
    small[8:12, 8:12] = True
    carved = big & ~small
    assert claim_losers([small, big], [small, carved], [True, True], [0.9, 0.4]) == {0}
    assert claim_losers([big, small], [carved, small], [True, True], [0.4, 0.9]) == {1}


def test_two_look_alikes_segmented_together_are_split_not_hidden() -> None:
    """Both masks cover both objects; per pixel each keeps its own half: no loser."""
    both = np.zeros((10, 20), bool)
    both[2:8, 2:18] = True
    left, right = both.copy(), both.copy()
    left[:, 10:] = False
    right[:, :10] = False
    assert claim_losers([both, both], [left, right], [True, True], [0.9, 0.5]) == set()


def test_exclusive_logits_leave_each_pixel_to_one_object() -> None:
    logits = torch.tensor([[[[5.0, -1.0], [2.0, 3.0]]], [[[4.0, 2.0], [6.0, -20.0]]]])
    out = exclusive_logits(logits)
    assert out[0, 0].tolist() == [[5.0, -10.0], [-10.0, 3.0]]
    assert out[1, 0].tolist() == [[-10.0, 2.0], [6.0, -20.0]]
    assert ((out > 0).sum(dim=0) <= 1).all()
    single = logits[:1]
    assert exclusive_logits(single) is single


def test_exclusive_logits_equal_metas_constraint_ties_included() -> None:
    """The semantics of Meta's ``_apply_non_overlapping_constraints`` (argmax over the
    objects, the first object winning a tie), on random logits with planted ties."""
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 1, 32, 32, generator=generator) * 8
    logits[1, 0, :8] = logits[0, 0, :8]  # ties between objects 0 and 1
    logits[3, 0, 4:16] = logits[2, 0, 4:16]
    logits[:, 0, 20:, :4] = -1024.0  # every object hidden there (SAM 2's no-object score)
    winner = torch.argmax(logits, dim=0, keepdim=True)
    mine = winner == torch.arange(4)[:, None, None, None]
    expected = torch.where(mine, logits, torch.clamp(logits, max=-10.0))
    assert torch.equal(exclusive_logits(logits), expected)


def test_modes() -> None:
    assert not make_policy("sam2", None).wants_candidates
    with pytest.raises(ValueError, match="tracking_mode"):
        make_policy("fast", None)


def _hidden_behind_occluder(mode: str, occluder_box: tuple[int, int, int, int]):
    """Frame 3 of two objects on a 16x16 decoder grid: object 1 moved right for frames 0-2
    and is not seen now; object 2 is seen over ``occluder_box`` (y0, y1, x0, x1). Returns
    both objects' committed outputs after the policy's frame steps."""
    from types import SimpleNamespace

    from sam2_ros.engine.memory_bank import FrameOutput, ObjectMemory
    from sam2_ros.engine.steps.sam2_steps import Decoded

    # The policy's door into SAM 2: the model's facts and each object's candidate pointer
    # (built on the device; here the token itself).
    steps = SimpleNamespace(
        facts=SimpleNamespace(num_maskmem=7, max_obj_ptrs_in_encoder=16, pred_obj_scores=False),
        object_pointer=lambda token, score_logits: token)
    policy = make_policy(mode, steps)
    mover, occluder = ObjectMemory(1), ObjectMemory(2)
    state = None
    for t, box in enumerate(_moving_boxes(3, start=(1.0, 4.0), velocity=(2.0, 0.0),
                                          size=(4.0, 4.0))):
        state = BoxState.start(box) if state is None else state.predict().update(box)
        mover.motion[t] = state
    occluder.motion[2] = BoxState.start(np.array([5.0, 3.0, 14.0, 11.0]))
    logits = torch.full((2, 1, 16, 16), -8.0)
    y0, y1, x0, x1 = occluder_box
    logits[1, 0, y0:y1, x0:x1] = 8.0
    scores = torch.tensor([[-3.0], [4.0]])
    decoded = Decoded(
        pred_masks=logits.clone(), high_res_masks=logits.clone(), ious=torch.tensor([0.2, 0.9]),
        obj_ptr=torch.zeros(2, 4), object_score_logits=scores.clone(),
        multi_low_res=logits.repeat(1, 3, 1, 1), multi_ious=torch.tensor([[0.2] * 3, [0.9] * 3]),
        tokens=torch.zeros(2, 3, 4),
    )
    objects = [mover, occluder]
    policy.select(objects, 3, decoded)
    policy.resolve([(objects, decoded)])
    outs = []
    for b, obj in enumerate(objects):
        out = FrameOutput(decoded.obj_ptr[b : b + 1], decoded.object_score_logits[b : b + 1],
                          decoded.pred_masks[b : b + 1], None, decoded.ious[b : b + 1])
        policy.commit(obj, 3, out)
        outs.append(out)
    return objects, outs


def test_a_hidden_object_carries_its_predicted_box_covered_or_not() -> None:
    """Motion mode: the unseen mover gets the filter's box for this frame, judged covered
    when the seen object lies over it; the seen object gets none. sam2 mode: none at all."""
    from sam2_ros.engine.identity.overlap import box_covered
    from sam2_ros.engine.steps.postprocessing import ObjectOnFrame, frame_results

    (mover, _), (hidden, seen) = _hidden_behind_occluder("motion", (3, 11, 5, 15))
    expected = mover.motion[2].predict().box
    assert hidden.predicted_box == pytest.approx(tuple(expected))
    assert 6.0 < (expected[0] + expected[2]) / 2 < 11.0  # moved on from x centre 7 at t=2
    assert hidden.covered
    assert seen.predicted_box is None and not seen.covered
    # The same mover with the seen object elsewhere: predicted, but nothing hides it.
    _, (hidden, _) = _hidden_behind_occluder("motion", (12, 16, 0, 4))
    assert hidden.predicted_box is not None and not hidden.covered
    _, outs = _hidden_behind_occluder("sam2", (3, 11, 5, 15))
    assert all(o.predicted_box is None and not o.covered for o in outs)

    # At camera size (32 x 64 pixels: x scales by 4, y by 2), clipped to the image.
    objects, outs = _hidden_behind_occluder("motion", (3, 11, 5, 15))
    items = [ObjectOnFrame(o, out, 3) for o, out in zip(objects, outs, strict=True)]
    results, _ = frame_results(items, (32, 64), 0.0, torch.device("cpu"))
    x0, y0, x1, y1 = expected
    assert results[0].predicted_box == (round(x0 * 4), round(y0 * 2),
                                        round(x1 * 4) - round(x0 * 4),
                                        round(y1 * 2) - round(y0 * 2))
    assert results[0].covered and not results[0].visible
    assert results[1].predicted_box is None and results[1].visible
    assert box_covered((-4.0, -4.0, -1.0, -1.0), np.ones((4, 4), bool)) is False


def test_a_mask_on_another_colour_does_not_look_like_the_object() -> None:
    """Features of two regions with different looks: a mask on either region looks like
    itself over time (noise aside), not like the other; an empty mask has no look."""
    gen = torch.Generator().manual_seed(0)
    red, green = torch.randn(16, generator=gen), torch.randn(16, generator=gen)

    def frame() -> torch.Tensor:
        feats = 0.05 * torch.randn(1, 16, 32, 32, generator=gen)
        feats[0, :, 4:12, 4:12] += red[:, None, None]
        feats[0, :, 18:28, 16:30] += green[:, None, None]
        return feats

    def logits(y0: int, y1: int, x0: int, x1: int, size: int = 32) -> torch.Tensor:
        out = torch.full((1, 1, size, size), -5.0)
        out[..., y0:y1, x0:x1] = 5.0
        return out

    circle = pooled(frame(), logits(4, 12, 4, 12))
    later = pooled(frame(), logits(5, 11, 5, 11))
    on_rectangle = pooled(frame(), logits(18, 28, 16, 30))
    assert similarity(circle, later) > 0.95
    assert similarity(circle, on_rectangle) < 0.5
    # A mask on a finer grid than the features is averaged down to theirs.
    assert similarity(circle, pooled(frame(), logits(16, 48, 16, 48, size=128))) > 0.95
    assert pooled(frame(), torch.full((1, 1, 32, 32), -5.0)) is None
    assert similarity(circle, None) is None


def test_the_object_seen_before_wins_a_near_tie_for_a_region() -> None:
    """Two masks on one region with near-equal predicted IoU and motion (a hidden object
    drawn on its occluder): the bonus goes to the one seen on its previous frame, and it is
    the other that loses the region; a clear difference still decides without it."""
    region = np.zeros((20, 20), bool)
    region[5:15, 5:15] = True
    hidden_drawn_on_it = claim_strength(0.68, 0.9, 0.25, seen_before=False, continuity=0.1)
    occluder = claim_strength(0.64, 0.9, 0.25, seen_before=True, continuity=0.1)
    assert occluder > hidden_drawn_on_it
    masks = [region, region.copy()]
    exclusive = [region, np.zeros_like(region)]  # the per-pixel split leaves it all to one
    assert claim_losers(masks, exclusive, [True, True], [hidden_drawn_on_it, occluder]) == {0}
    assert claim_losers(masks, exclusive, [True, True],
                        [claim_strength(0.68, 0.9, 0.25, False, 0.0),
                         claim_strength(0.64, 0.9, 0.25, True, 0.0)]) == {1}
    assert claim_strength(0.9, 1.0, 0.25, False, 0.1) > claim_strength(0.3, 0.2, 0.25, True, 0.1)
