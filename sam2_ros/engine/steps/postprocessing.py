"""From SAM 2's low-resolution logits to what a caller gets at camera resolution.

Hole filling is SAM 2's video post-processing (Meta's predictor does it with a CUDA op;
here OpenCV on a CPU, and on a GPU the same holes found on the device without a host wait).

``frame_results`` is the frame path: every object of a frame in one batched step on the
model's device (upsampling to camera size, thresholding, the label index of the visible
objects, and per-object area, box and centroid from row/column sums), then one copy of
uint8 data to the host. Nothing loops over objects at full resolution in Python, and the
camera-size float logits are not kept: a caller who asks for them (``ObjectResult.logits``)
gets them upsampled again from the object's low-resolution logits (a result kept until the
next frame would otherwise hold every object's camera-size floats on the device).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.memory_bank import FrameOutput, ObjectMemory
from sam2_ros.engine.results import FrameMaps, HostTransfer, ObjectResult
from sam2_ros.imaging.masks import label_image


def fill_holes(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """Background specks of area <= max_area become foreground (score 0.1), as SAM 2 does.

    On a CPU the logits are host memory: OpenCV labels them (no wait, and far faster than
    the device path on a CPU). Elsewhere ``fill_holes_on_device``: no host round trip."""
    if max_area <= 0:
        return logits
    if logits.device.type != "cpu":
        return fill_holes_on_device(logits, max_area)
    background = (logits <= 0).numpy().astype(np.uint8)
    holes = np.zeros(background.shape, dtype=bool)
    for b in range(background.shape[0]):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(background[b, 0], connectivity=8)
        if count <= 1:
            continue
        small = stats[:, cv2.CC_STAT_AREA] <= max_area
        small[0] = False  # label 0 is the foreground here
        holes[b, 0] = small[labels]
    if not holes.any():
        return logits
    return torch.where(torch.from_numpy(holes), torch.full_like(logits, 0.1), logits)


def fill_holes_on_device(logits: torch.Tensor, max_area: int) -> torch.Tensor:
    """``fill_holes`` on the logits' device, without a host wait (the same holes as
    OpenCV's 8-connected components).

    How: each background pixel takes the smallest pixel index of its 3x3 background
    neighbourhood, ``max_area`` times; a component of at most ``max_area`` pixels spans
    fewer steps, so it then holds one label everywhere and no neighbour differs. A label
    whose pixels all agree with their neighbours is a whole component: it is a hole when
    it counts at most ``max_area`` pixels."""
    if max_area <= 0:
        return logits
    batch, _, height, width = logits.shape
    cells = height * width
    background = logits <= 0
    ids = torch.arange(cells, device=logits.device, dtype=torch.float32).view(1, 1, height, width)
    none = float(cells)  # the foreground's label: above every pixel index
    labels = torch.where(background, ids, none)
    for _ in range(max_area):
        labels = torch.where(background, -F.max_pool2d(-labels, 3, 1, 1), none)
    lowest = -F.max_pool2d(-labels, 3, 1, 1)
    highest = F.max_pool2d(torch.where(background, labels, -1.0), 3, 1, 1)
    unsettled = background & ((lowest != labels) | (highest != labels))
    index = labels.long().view(batch, cells)
    count = torch.zeros(batch, cells + 1, device=logits.device)
    count.scatter_add_(1, index, background.view(batch, cells).float())
    open_ = torch.zeros_like(count).scatter_add_(1, index, unsettled.view(batch, cells).float())
    small = (count <= max_area) & (open_ == 0)
    small[:, cells] = False
    hole = small.gather(1, index).view_as(background) & background
    return torch.where(hole, torch.full_like(logits, 0.1), logits)


@dataclass
class ObjectOnFrame:
    """One object to report on a frame: its memory, its output there (None: no output)
    and the frames since its last prompt."""

    obj: ObjectMemory
    out: FrameOutput | None
    frames_since_prompt: int

    @property
    def has_masks(self) -> bool:
        return self.out is not None and self.out.pred_masks is not None


#: Integer statistics per object, in this order (int64 on the device).
_INT_STATS = ("area", "x0", "x1", "y0", "y1", "sum_x", "sum_y")


def frame_results(
    items: Sequence[ObjectOnFrame],
    image_hw: tuple[int, int],
    mask_threshold: float,
    device: torch.device,
) -> tuple[list[ObjectResult], HostTransfer]:
    """Results of all objects on one frame at camera resolution, batched on ``device``."""
    height, width = image_hw
    with_out = [k for k, it in enumerate(items) if it.has_masks]
    results: list[ObjectResult | None] = [
        None if it.has_masks else _empty_result(it, image_hw) for it in items
    ]
    transfer = HostTransfer()
    if with_out:
        outs = [items[k].out for k in with_out]
        host, transfer = _batched_maps(outs, image_hw, mask_threshold, device)
        maps = FrameMaps(host["index"], tuple(items[with_out[j]].obj.object_id
                                              for j in host["participants"]),
                         frozenset(it.obj.object_id for it in items), mask_threshold)
        for j, k in enumerate(with_out):
            it = items[k]
            area, x0, x1, y0, y1, sum_x, sum_y = (int(v) for v in host["ints"][j])
            score_logit = float(host["floats"][j, 0])
            results[k] = ObjectResult(
                object_id=it.obj.object_id,
                label=it.obj.label,
                visible=score_logit > 0,
                presence=float(1.0 / (1.0 + np.exp(-score_logit))),
                score=float(host["floats"][j, 1]),
                mask=host["masks"][j],
                bbox=(x0, y0, x1 - x0 + 1, y1 - y0 + 1) if area else (0, 0, 0, 0),
                centroid=(sum_x / area, sum_y / area) if area else (0.0, 0.0),
                area=area,
                frames_since_prompt=it.frames_since_prompt,
                tracked=it.obj.is_tracked,
                predicted_box=None if score_logit > 0 else _camera_box(
                    it.out.predicted_box, it.out.pred_masks.shape[-2:], image_hw),
                covered=score_logit <= 0 and it.out.covered,
                logits_source=_LazyLogits(it.out.pred_masks, image_hw, device),
                frame_maps=maps,
            )
    else:
        empty = np.zeros((height, width), dtype=np.uint8)
        maps = FrameMaps(empty, (), frozenset(it.obj.object_id for it in items), mask_threshold)
        for r in results:
            r.frame_maps = maps
    return results, transfer  # type: ignore[return-value]


def _batched_maps(
    outs: Sequence[FrameOutput], image_hw: tuple[int, int], threshold: float,
    device: torch.device,
) -> tuple[dict, HostTransfer]:
    """Upsample, threshold, label and measure N objects on the device; one host copy."""
    height, width = image_hw
    n = len(outs)
    up = _upsample(torch.cat([o.pred_masks for o in outs]), image_hw, device)
    masks = up > threshold  # N x H x W, False for NaN
    score_logits = torch.cat([o.object_score_logits.reshape(1) for o in outs]).float()
    ious = torch.cat([o.iou.reshape(1).to(device) for o in outs]).float()
    cols = masks.sum(dim=1)  # N x W
    rows = masks.sum(dim=2)  # N x H
    area = cols.sum(dim=1)
    xs = torch.arange(width, device=device)
    ys = torch.arange(height, device=device)
    has_col, has_row = cols > 0, rows > 0
    x0 = has_col.int().argmax(dim=1)
    x1 = width - 1 - has_col.flip(1).int().argmax(dim=1)
    y0 = has_row.int().argmax(dim=1)
    y1 = height - 1 - has_row.flip(1).int().argmax(dim=1)
    ints = torch.stack([area, x0, x1, y0, y1, (cols * xs).sum(1), (rows * ys).sum(1)], dim=1)
    # The label index: visible, non-empty objects; the highest logit above the threshold.
    participants = (score_logits > 0) & (area > 0)
    eligible = masks & participants[:, None, None]
    # max(dim=0).indices, not argmax(dim=0): the same first-maximum index, many times faster
    # on a CPU (docs/benchmarks.md, "Label image"). In place (``up`` and ``eligible`` are
    # not needed after this, and are let go): copies were the step's peak at 1080p with 16
    # objects (docs/benchmarks.md, "Memory as documented").
    any_eligible = eligible.any(dim=0)
    best = up.masked_fill_(eligible.logical_not_(), float("-inf")).max(dim=0).indices
    del up, eligible
    # Index k counts participants only, so ids[k-1] is the k-th visible object.
    rank = torch.cumsum(participants.long(), dim=0)
    index = torch.where(any_eligible, rank[best], torch.zeros_like(best))
    index_dtype = torch.uint8 if n < 255 else torch.int32
    parts = [
        masks.reshape(-1).view(torch.uint8),  # a view: bool is one byte
        index.to(index_dtype).reshape(-1).view(torch.uint8),
        ints.to(torch.int64).reshape(-1).view(torch.uint8),
        torch.stack([score_logits, ious], dim=1).reshape(-1).view(torch.uint8),
        participants.to(torch.uint8),
    ]
    packed = host_sync.read(torch.cat(parts))[0]  # the frame's one device-to-host copy
    sizes = [p.numel() for p in parts]
    chunks = np.split(packed, np.cumsum(sizes)[:-1])
    host = {
        "masks": chunks[0].reshape(n, height, width).view(bool),
        "index": chunks[1].view(np.uint8 if n < 255 else np.int32).reshape(height, width),
        "ints": chunks[2].view(np.int64).reshape(n, len(_INT_STATS)),
        "floats": chunks[3].view(np.float32).reshape(n, 2),
        "participants": np.flatnonzero(chunks[4]),
    }
    return host, HostTransfer(bytes=int(packed.nbytes), syncs=1)  # counted by host_sync


def _upsample(low: torch.Tensor, image_hw: tuple[int, int], device: torch.device) -> torch.Tensor:
    """Low-resolution logits [N, 1, s, s] to camera size [N, H, W] (float32, on device)."""
    low = low.to(device, torch.float32)
    return F.interpolate(low, size=image_hw, mode="bilinear", align_corners=False)[:, 0]


class _LazyLogits:
    """One object's camera-size logits, made and copied to the host on first use only; it
    keeps the small low-resolution logits, never a camera-size tensor."""

    def __init__(self, low: torch.Tensor, image_hw: tuple[int, int],
                 device: torch.device) -> None:
        self._low, self._image_hw, self._device = low, image_hw, device
        self._host: np.ndarray | None = None

    def __call__(self) -> np.ndarray:
        if self._host is None:
            self._host = host_sync.read(_upsample(self._low, self._image_hw, self._device)[0])[0]
            self._low = None
        return self._host


def _camera_box(
    box: Sequence[float] | None, grid_hw: Sequence[int], image_hw: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """A box (x0, y0, x1, y1) of the decoder's low-resolution grid as (x, y, width,
    height) camera pixels, clipped to the image (SAM 2 stretches the image to its square
    input, so each axis scales on its own); None when none or nothing of it is inside."""
    if box is None:
        return None
    height, width = image_hw
    sx, sy = width / int(grid_hw[1]), height / int(grid_hw[0])
    x0 = min(max(round(box[0] * sx), 0), width)
    y0 = min(max(round(box[1] * sy), 0), height)
    x1 = min(max(round(box[2] * sx), 0), width)
    y1 = min(max(round(box[3] * sy), 0), height)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1 - x0, y1 - y0)


def _empty_result(item: ObjectOnFrame, image_hw: tuple[int, int]) -> ObjectResult:
    """An object without output on this frame: empty and invisible."""
    return ObjectResult(
        item.obj.object_id, item.obj.label, False, 0.0, 0.0,
        np.zeros(image_hw, dtype=bool), (0, 0, 0, 0), (0.0, 0.0), 0,
        item.frames_since_prompt, tracked=item.obj.is_tracked,
    )


def label_image_of(
    results: Sequence[ObjectResult], image_hw: tuple[int, int], threshold: float = 0.0
) -> np.ndarray:
    """uint16 label image: pixel = id of the visible object with the highest logit.

    Results that are exactly one postprocessing call (the tracker's usual frame) reuse the
    label index it made on the device; any other set is merged from its logits here.
    """
    maps = results[0].frame_maps if results else None
    if (maps is not None and maps.threshold == threshold and maps.index.shape == tuple(image_hw)
            and all(r.frame_maps is maps for r in results)
            and maps.all_ids == {r.object_id for r in results}):
        return maps.labels()
    shown = [r for r in results if r.shown]
    return label_image(
        [r.logits for r in shown], [r.object_id for r in shown], threshold, shape=image_hw
    )
