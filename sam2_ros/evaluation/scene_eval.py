"""Judge a model by what it tracks: click objects on held-out scenes, score every frame.

Used by ``sam2_ros train`` (its final report), by ``sam2_ros evaluate`` (the numbers of
docs/demo_model.md) and by the quality tests, so all three measure the same thing: each
object visible on the first frame gets one positive click at its most interior point, as
a person or planner would give; every frame is scored with DAVIS's J and F, how often the
visibility head is right about hidden and in-view frames, whether a returning object is
found again within ``refind_frames``, and how well the object score ranks in-view frames
above hidden ones (ROC AUC). The AUC stands beside the rates because those trade against
each other through where the threshold lands, which moves between runs of one recipe
(docs/demo_model.md); the ranking says what any threshold can reach.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from sam2_ros.engine.model_loading import LoadedModel
from sam2_ros.engine.streaming_tracker import StreamingTracker
from sam2_ros.evaluation.davis_metrics import region_similarity
from sam2_ros.evaluation.random_scenes import (
    HELDOUT_FRAMES,
    RandomScene,
    RandomSceneConfig,
    visible_ids,
)
from sam2_ros.evaluation.run_summary import RunTimeline
from sam2_ros.evaluation.unseen.families import UNSEEN_FAMILIES, unseen_scene
from sam2_ros.imaging.masks import interior_point
from sam2_ros.settings import TrackerSettings


@dataclass
class SceneScore:
    """One scene: J&F over its objects and the occlusion statistics."""

    seed: int
    objects: int
    j: float
    f: float
    jf: float
    hidden_frames: int = 0
    hidden_reported_invisible: int = 0
    shown_frames: int = 0
    shown_reported_visible: int = 0
    reappearances: int = 0
    refound: int = 0
    # The occlusion head's presence (sigmoid of the object score) on each hidden and each
    # in-view object-frame, for the threshold-free ranking (``EvalReport.visibility_auc``).
    hidden_presence: list[float] = field(default_factory=list)
    shown_presence: list[float] = field(default_factory=list)
    # Identity (``identity_metrics``): switches, object-frames scored and kept, IDF1 counts.
    id_switches: int = 0
    id_frames: int = 0
    id_kept: int = 0
    idtp: int = 0
    idfp: int = 0
    idfn: int = 0


def ranking_auc(positives: Sequence[float], negatives: Sequence[float]) -> float | None:
    """Probability that a random positive scores above a random negative (ties: half), the
    area under the ROC curve; None without both kinds."""
    if not len(positives) or not len(negatives):
        return None
    pos = np.asarray(positives, dtype=float)[:, None]
    neg = np.asarray(negatives, dtype=float)[None, :]
    return float(np.mean((pos > neg) + 0.5 * (pos == neg)))


@dataclass
class EvalReport:
    """Scores over a set of scenes, with the totals people quote."""

    scenes: list[SceneScore] = field(default_factory=list)

    @property
    def jf(self) -> float:
        return float(np.mean([s.jf for s in self.scenes])) if self.scenes else 0.0

    @property
    def j(self) -> float:
        return float(np.mean([s.j for s in self.scenes])) if self.scenes else 0.0

    @property
    def f(self) -> float:
        return float(np.mean([s.f for s in self.scenes])) if self.scenes else 0.0

    def _pooled(self, part: str, whole: str) -> float:
        """A rate over all scenes' frames pooled (not a mean of per-scene rates, which
        would weigh a scene with one hidden frame like one with fifty); 1.0 when none."""
        total = sum(getattr(s, whole) for s in self.scenes)
        return sum(getattr(s, part) for s in self.scenes) / total if total else 1.0

    @property
    def hidden_invisible_rate(self) -> float:
        return self._pooled("hidden_reported_invisible", "hidden_frames")

    @property
    def shown_visible_rate(self) -> float:
        return self._pooled("shown_reported_visible", "shown_frames")

    @property
    def refound_rate(self) -> float:
        return self._pooled("refound", "reappearances")

    @property
    def visibility_auc(self) -> float | None:
        """In-view frames' presence ranked above hidden frames' (ROC AUC); None when no
        object was hidden. 0.5: no better than chance; 1: some threshold separates them."""
        return ranking_auc([p for s in self.scenes for p in s.shown_presence],
                           [p for s in self.scenes for p in s.hidden_presence])

    @property
    def id_switches(self) -> int:
        return sum(s.id_switches for s in self.scenes)

    @property
    def identity_kept(self) -> float:
        """Share of scored object-frames whose mask was not on another object."""
        return self._pooled("id_kept", "id_frames")

    @property
    def idf1(self) -> float:
        tp = sum(s.idtp for s in self.scenes)
        wrong = sum(s.idfp + s.idfn for s in self.scenes)
        return 2 * tp / (2 * tp + wrong) if tp + wrong else 1.0

    @property
    def scenes_with_switch(self) -> int:
        return sum(1 for s in self.scenes if s.id_switches)

    def as_dict(self) -> dict:
        return {
            "jf": self.jf, "j": self.j, "f": self.f,
            "id_switches": self.id_switches,
            "scenes_with_switch": self.scenes_with_switch,
            "identity_kept": self.identity_kept,
            "idf1": self.idf1,
            "hidden_frames": sum(s.hidden_frames for s in self.scenes),
            "hidden_invisible_rate": self.hidden_invisible_rate,
            "shown_frames": sum(s.shown_frames for s in self.scenes),
            "shown_visible_rate": self.shown_visible_rate,
            "reappearances": sum(s.reappearances for s in self.scenes),
            "refound_rate": self.refound_rate,
            "visibility_auc": self.visibility_auc,
            "scenes": [asdict(s) for s in self.scenes],
        }


    def markdown(self) -> list[str]:
        """The totals as a Markdown table (training report, `sam2_ros evaluate`)."""
        hidden = sum(s.hidden_frames for s in self.scenes)
        shown = sum(s.shown_frames for s in self.scenes)
        back = sum(s.reappearances for s in self.scenes)
        auc = self.visibility_auc
        return [
            "| J&F | J | F | hidden frames reported invisible | frames in view reported visible "
            "| found again within 5 frames | identity switches | identity kept | IDF1 |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {self.jf:.3f} | {self.j:.3f} | {self.f:.3f} | {self.hidden_invisible_rate:.1%} "
            f"({hidden} frames) | {self.shown_visible_rate:.1%} ({shown} frames) "
            f"| {self.refound_rate:.1%} ({back} reappearances) "
            f"| {self.id_switches} (in {self.scenes_with_switch} of {len(self.scenes)} scenes) "
            f"| {self.identity_kept:.1%} | {self.idf1:.3f} |",
            "",
            "Object score, in view ranked above hidden (ROC AUC, any threshold): "
            + (f"{auc:.3f}" if auc is not None else "- (no object was hidden)"),
        ]


def heldout_scene(seed: int, num_frames: int = HELDOUT_FRAMES, family: str = "standard"):
    """A scene from the held-out split (never trained on), 320x240 like the demo camera;
    ``family`` "crossing" draws the held-out crossing scenes (look-alikes that cross), an
    unseen family (``unseen.families``: "textured", "clutter") a scene of its own generator."""
    if family in UNSEEN_FAMILIES:
        return unseen_scene(family, seed, num_frames)
    return RandomScene(RandomSceneConfig(num_frames=num_frames, seed=seed, split="heldout",
                                         family=family))


def click_objects(
    tracker: StreamingTracker, rgb: np.ndarray, labels: np.ndarray, stamp: int, min_area: int
) -> dict[int, int]:
    """Click each large enough object once on this frame; returns tracker id -> ground-truth id."""
    ids: dict[int, int] = {}
    for gt_id in visible_ids(labels, min_area):
        x, y = interior_point(labels == gt_id)
        result = tracker.add_prompt(points=[[x, y]], labels=[1], stamp=stamp)
        ids[result.object_id] = gt_id
    return ids


def score_run(
    frames: Iterable[tuple[int, np.ndarray, np.ndarray]],
    tracker: StreamingTracker,
    seed: int = 0,
    min_area: int = 120,
    refind_frames: int = 5,
) -> SceneScore:
    """Track (stamp, rgb, labels) frames, clicking objects on the first; score the run."""
    timeline = RunTimeline()
    ids: dict[int, int] = {}
    gt_area: dict[int, list[int]] = {}
    visible: dict[int, list[bool]] = {}
    presence: dict[int, list[float]] = {}
    jaccard: dict[int, list[float]] = {}
    for i, (stamp, rgb, labels) in enumerate(frames):
        result = tracker.track(rgb, stamp)
        objects = result.objects
        if i == 0:
            ids = click_objects(tracker, rgb, labels, stamp, min_area)
            objects = tracker.latest_results()
        timeline.add_ground_truth(objects, labels, ids)
        for obj in objects:
            gt = labels == ids[obj.object_id]
            gt_area.setdefault(obj.object_id, []).append(int(gt.sum()))
            visible.setdefault(obj.object_id, []).append(bool(obj.visible))
            presence.setdefault(obj.object_id, []).append(float(obj.presence))
            pred = obj.mask if obj.visible else np.zeros_like(gt)
            jaccard.setdefault(obj.object_id, []).append(region_similarity(pred, gt))
    j_obj = [np.mean(v) for v in timeline.j_scores.values()]
    f_obj = [np.mean(v) for v in timeline.f_scores.values()]
    j = float(np.mean(j_obj)) if j_obj else 0.0
    f = float(np.mean(f_obj)) if f_obj else 0.0
    score = SceneScore(seed, len(ids), j, f, (j + f) / 2.0)
    ident = timeline.identity
    score.id_switches, score.id_frames, score.id_kept = (
        ident.switches, ident.scored_frames, ident.kept_frames)
    score.idtp = sum(o.idtp for o in ident.objects.values())
    score.idfp = sum(o.idfp for o in ident.objects.values())
    score.idfn = sum(o.idfn for o in ident.objects.values())
    for oid, areas in gt_area.items():
        _occlusion_stats(score, areas, visible[oid], presence[oid], jaccard[oid],
                         refind_frames)
    return score


def _occlusion_stats(
    score: SceneScore, areas: Sequence[int], visible: Sequence[bool], presence: Sequence[float],
    jaccard: Sequence[float], refind_frames: int,
) -> None:
    for i, area in enumerate(areas):
        if area == 0:
            score.hidden_frames += 1
            score.hidden_reported_invisible += int(not visible[i])
            score.hidden_presence.append(presence[i])
            continue
        score.shown_frames += 1
        score.shown_reported_visible += int(visible[i])
        score.shown_presence.append(presence[i])
        if i > 0 and areas[i - 1] == 0:
            score.reappearances += 1
            window = range(i, min(len(areas), i + refind_frames))
            score.refound += int(any(visible[k] and jaccard[k] >= 0.5 for k in window))


def evaluate_heldout(
    tracker_factory, seeds: Sequence[int], num_frames: int = HELDOUT_FRAMES,
    progress: bool = False, family: str = "standard",
) -> EvalReport:
    """Score fresh trackers (``tracker_factory()``) on held-out scenes of the given seeds."""
    from tqdm import tqdm

    report = EvalReport()
    for seed in tqdm(seeds, desc=f"held-out {family} scenes", disable=not progress):
        scene = heldout_scene(seed, num_frames, family)
        frames = ((f.stamp_ns, f.rgb, f.labels) for f in scene.frames())
        report.scenes.append(score_run(frames, tracker_factory(), seed))
    return report


def evaluate_model(
    settings: TrackerSettings, seeds: Sequence[int], num_frames: int = HELDOUT_FRAMES,
    progress: bool = False, loaded: LoadedModel | None = None, family: str = "standard",
) -> EvalReport:
    """Held-out scores of the model ``settings`` name (or of ``loaded``, already loaded from
    them): loaded once, a fresh tracker with the node's tracker options per scene."""
    model = loaded if loaded is not None else settings.load()
    return evaluate_heldout(lambda: settings.build(model), seeds, num_frames, progress,
                            family)
