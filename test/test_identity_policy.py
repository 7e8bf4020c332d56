"""The parts of tracking_mode motion on hand-made data: the box filter, the choice among
candidate masks, objects claiming one region, and SAM 2's non-overlap constraint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam2_ros.engine.identity.candidates import box_iou, choose_candidate, mask_box
from sam2_ros.engine.identity.motion_filter import BoxState
from sam2_ros.engine.identity.overlap import claim_losers, exclusive_logits
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


def test_modes() -> None:
    assert not make_policy("sam2", None).wants_candidates
    with pytest.raises(ValueError, match="tracking_mode"):
        make_policy("fast", None)
