"""The prompts file of ``sam2_ros replay``: when to prompt which object with what.

A YAML list under ``prompts:``; each entry names a frame (``frame:`` index in the image
topic, or ``stamp:`` in ns) and any of ``points``/``labels``, ``box``, ``mask`` (an image
relative to the file), ``label``, ``object_id`` (0 or absent: a new object, else refine
that id), ``clear_previous`` and ``gt_id`` (its ground-truth label, for J&F). The full
format with an example is in docs/offline_tools.md.

Errors name the line of the offending entry and the reason, because a long prompts file
is written by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import yaml

_KEYS = {
    "frame",
    "stamp",
    "label",
    "object_id",
    "points",
    "labels",
    "box",
    "mask",
    "clear_previous",
    "gt_id",
}


class PromptFileError(ValueError):
    """A prompts file that cannot be used; the message says where and why."""


@dataclass(frozen=True)
class FilePrompt:
    """One prompt of a prompts file, checked for form (the tracker checks the rest)."""

    line: int
    frame: int | None
    stamp: int | None
    label: str
    object_id: int
    points: list[list[float]] | None
    labels: list[int] | None
    box: list[float] | None
    mask: np.ndarray | None
    clear_previous: bool
    gt_id: int | None

    def applies_to(self, frame_index: int, stamp_ns: int) -> bool:
        return self.frame == frame_index if self.frame is not None else self.stamp == stamp_ns


def load_prompt_file(path: str | Path) -> list[FilePrompt]:
    """Read and check a prompts file; raise PromptFileError('file:line: reason')."""
    path = Path(path)
    if not path.is_file():
        raise PromptFileError(f"prompts file not found: {path}")
    text = path.read_text(encoding="utf-8")
    try:
        root = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise PromptFileError(f"{where}: not valid YAML ({getattr(exc, 'problem', exc)})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("prompts"), list):
        raise PromptFileError(f"{path}:1: expected a mapping with a 'prompts:' list")
    items = next(v for k, v in root.value if k.value == "prompts").value
    prompts = []
    for node, entry in zip(items, data["prompts"], strict=True):
        line = node.start_mark.line + 1
        try:
            prompts.append(_parse_entry(entry, line, path.parent))
        except (TypeError, ValueError) as exc:
            raise PromptFileError(f"{path}:{line}: {exc}") from exc
    if not prompts:
        raise PromptFileError(f"{path}: the prompts list is empty")
    return prompts


def _parse_entry(entry: object, line: int, base: Path) -> FilePrompt:
    if not isinstance(entry, dict):
        raise ValueError("each prompt must be a mapping (key: value lines)")
    unknown = sorted(set(entry) - _KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; known keys: {sorted(_KEYS)}")
    if ("frame" in entry) == ("stamp" in entry):
        raise ValueError("give exactly one of 'frame' (index) or 'stamp' (nanoseconds)")
    frame = _int(entry, "frame", minimum=0)
    stamp = _int(entry, "stamp", minimum=1)
    points = entry.get("points")
    labels = entry.get("labels")
    if points is not None:
        if not isinstance(points, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(_is_number(v) for v in p) for p in points
        ):
            raise ValueError("points must be a list of [x, y] pairs")
        if labels is None:
            labels = [1] * len(points)
    if labels is not None:
        if not isinstance(labels, list) or not all(v in (0, 1) for v in labels):
            raise ValueError("labels must be a list of 1 (positive) or 0 (negative)")
        if points is None or len(labels) != len(points):
            raise ValueError(
                f"{len(labels)} labels for {0 if points is None else len(points)} points"
            )
    box = entry.get("box")
    if box is not None and (
        not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) for v in box)
    ):
        raise ValueError("box must be [x0, y0, x1, y1]")
    mask = None
    if entry.get("mask") is not None:
        mask_path = base / str(entry["mask"])
        image = cv2.imread(str(mask_path), cv2.IMREAD_GRAYSCALE)
        if image is None:
            raise ValueError(f"cannot read mask image {mask_path}")
        mask = image > 0
    if points is None and box is None and mask is None:
        raise ValueError("a prompt needs points, a box or a mask")
    clear = entry.get("clear_previous", False)
    if not isinstance(clear, bool):
        raise ValueError("clear_previous must be true or false")
    return FilePrompt(
        line=line,
        frame=frame,
        stamp=stamp,
        label=str(entry.get("label", "") or ""),
        object_id=_int(entry, "object_id", minimum=0) or 0,
        points=[[float(v) for v in p] for p in points] if points is not None else None,
        labels=[int(v) for v in labels] if labels is not None else None,
        box=[float(v) for v in box] if box is not None else None,
        mask=mask,
        clear_previous=clear,
        gt_id=_int(entry, "gt_id", minimum=1),
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int(entry: dict, key: str, minimum: int) -> int | None:
    if key not in entry or entry[key] is None:
        return None
    value = entry[key]
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValueError(f"{key} must be an integer >= {minimum}, got {value!r}")
    return value
