"""A strip of overlay frames from a run's output bag: the picture on README's first screen.

``python -m sam2_ros.bags.overlay_strip out/demo-<time>/output_bag docs/demo_overlay.png``
takes the node's ``~/overlay`` messages that ``sam2_ros demo`` (or ``sam2_ros replay
--overlay-topic``) recorded, picks frames evenly over the run, scales them down, writes them
side by side with the time of each into one PNG; small enough to commit.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

from sam2_ros import names
from sam2_ros.bags import bag_io
from sam2_ros.imaging.codec import image_msg_to_array

OVERLAY_TOPIC = names.resolved(names.OVERLAY)
OBJECTS_TOPIC = names.resolved(names.OBJECTS)
GAP = 4  # pixels of white between frames


def pick_evenly(count: int, wanted: int) -> list[int]:
    """Indices of ``wanted`` items spread from the first to the last of ``count``."""
    if count <= wanted:
        return list(range(count))
    return [round(i * (count - 1) / (wanted - 1)) for i in range(wanted)] if wanted > 1 else [0]


def overlay_strip(bag: Path, frames: int = 4, tile_width: int = 240) -> np.ndarray:
    """BGR image: ``frames`` overlay frames of the bag from the first that shows an object
    to the last, each ``tile_width`` wide, each with its time since the first overlay
    written in its corner."""
    if frames < 1 or tile_width < 16:
        raise ValueError(f"need frames >= 1 and tile_width >= 16, got {frames}, {tile_width}")
    info = bag_io.inspect_bag(bag)
    if OVERLAY_TOPIC not in info.topics:
        raise bag_io.BagError(
            f"{bag} has no {OVERLAY_TOPIC} topic (its topics: {', '.join(sorted(info.topics))})"
        )
    messages = sorted(
        ((stamp, msg) for _, stamp, msg in bag_io.iter_messages(bag, [OVERLAY_TOPIC])),
        key=lambda item: item[0],
    )
    if not messages:
        raise bag_io.BagError(f"{bag}: {OVERLAY_TOPIC} has no messages")
    first = messages[0][0]
    # Start at the first frame that shows an object: before the prompts there is none.
    tracked = _first_tracked_stamp(bag, info)
    if tracked is not None:
        messages = [item for item in messages if item[0] >= tracked] or messages
    tiles = []
    for index in pick_evenly(len(messages), frames):
        stamp, msg = messages[index]
        bgr = np.ascontiguousarray(image_msg_to_array(msg))
        height = round(bgr.shape[0] * tile_width / bgr.shape[1])
        tile = cv2.resize(bgr, (tile_width, height), interpolation=cv2.INTER_AREA)
        _stamp_corner(tile, f"t = {(stamp - first) / 1e9:.1f} s")
        tiles.append(tile)
    gap = np.full((tiles[0].shape[0], GAP, 3), 255, np.uint8)
    parts = [tiles[0]]
    for tile in tiles[1:]:
        parts += [gap, tile]
    return np.concatenate(parts, axis=1)


def _first_tracked_stamp(bag: Path, info: bag_io.BagInfo) -> int | None:
    """Stamp of the first ~/objects message that names an object, if the bag has them."""
    if OBJECTS_TOPIC not in info.topics:
        return None
    for _, stamp, msg in bag_io.iter_messages(bag, [OBJECTS_TOPIC]):
        if len(msg.objects):
            return stamp
    return None


def _stamp_corner(tile: np.ndarray, text: str) -> None:
    """White text on a dark box in the top-left corner."""
    font, scale = cv2.FONT_HERSHEY_SIMPLEX, 0.4
    (tw, th), baseline = cv2.getTextSize(text, font, scale, 1)
    tile[: th + baseline + 4, : tw + 4] //= 3
    cv2.putText(tile, text, (2, th + 2), font, scale, (255, 255, 255), 1, cv2.LINE_AA)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bag", type=Path, help="an output bag with the node's ~/overlay")
    parser.add_argument("png", type=Path, help="where to write the strip")
    parser.add_argument("--frames", type=int, default=4, help="frames in the strip (4)")
    parser.add_argument("--tile-width", type=int, default=240, help="pixels per frame (240)")
    args = parser.parse_args(argv)
    try:
        strip = overlay_strip(args.bag, args.frames, args.tile_width)
    except (bag_io.BagError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.png.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(args.png), strip, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f"{args.png}: {strip.shape[1]}x{strip.shape[0]}, {args.png.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
