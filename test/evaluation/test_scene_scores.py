"""The held-out scores' bookkeeping without a model: occlusion statistics and the object
score's ranking (ROC AUC) that `sam2_ros evaluate` and the training report print."""

from __future__ import annotations

import pytest

from sam2_ros.evaluation.scene_eval import (
    EvalReport,
    SceneScore,
    _occlusion_stats,
    ranking_auc,
)


def test_ranking_auc_counts_ordered_pairs_and_half_the_ties() -> None:
    assert ranking_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert ranking_auc([0.1], [0.9, 0.8]) == 0.0
    assert ranking_auc([0.5, 0.5], [0.5]) == 0.5
    # 0.7 beats 0.6 and ties 0.7; 0.4 beats neither: (1 + 0.5 + 0) / 4.
    assert ranking_auc([0.7, 0.4], [0.6, 0.7]) == pytest.approx(0.375)
    assert ranking_auc([], [0.3]) is None
    assert ranking_auc([0.3], []) is None


def test_occlusion_stats_keep_each_frames_presence_on_its_side() -> None:
    score = SceneScore(seed=0, objects=1, j=0.5, f=0.5, jf=0.5)
    # In view, hidden for two frames, back (found again on its second frame), in view.
    areas = [40, 0, 0, 30, 35]
    visible = [True, True, False, False, True]
    presence = [0.9, 0.6, 0.2, 0.3, 0.8]
    jaccard = [0.8, 0.0, 0.0, 0.0, 0.7]
    _occlusion_stats(score, areas, visible, presence, jaccard, refind_frames=5)
    assert (score.hidden_frames, score.hidden_reported_invisible) == (2, 1)
    assert (score.shown_frames, score.shown_reported_visible) == (3, 2)
    assert (score.reappearances, score.refound) == (1, 1)
    assert score.hidden_presence == [0.6, 0.2]
    assert score.shown_presence == [0.9, 0.3, 0.8]
    report = EvalReport([score])
    # Shown 0.9 and 0.8 beat both hidden frames, 0.3 beats only 0.2: 5 of 6 pairs.
    assert report.visibility_auc == pytest.approx(5 / 6)
    assert report.as_dict()["visibility_auc"] == pytest.approx(5 / 6)
    assert any("ROC AUC" in line and "0.833" in line for line in report.markdown())


def test_without_hidden_frames_the_ranking_is_not_made_up() -> None:
    score = SceneScore(seed=1, objects=1, j=1.0, f=1.0, jf=1.0)
    _occlusion_stats(score, [10, 12], [True, True], [0.9, 0.9], [1.0, 1.0], refind_frames=5)
    report = EvalReport([score])
    assert report.visibility_auc is None
    assert any("no object was hidden" in line for line in report.markdown())
