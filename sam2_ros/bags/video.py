"""Write overlay videos people can play anywhere.

H.264 in MP4 through the ffmpeg binary that the imageio-ffmpeg wheel ships (browsers,
VLC and phones play it); OpenCV's MPEG-4 Part 2 writer is the fallback where that wheel
is missing.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

LOG = logging.getLogger(__name__)


class VideoOutput:
    """Context manager taking BGR uint8 frames of one size (path None: counts them only)."""

    def __init__(self, path: str | Path | None, fps: float) -> None:
        self.path = Path(path) if path is not None else None
        self.fps = float(fps) if fps and fps > 0 else 10.0
        self.frames = 0
        self.codec = ""
        self._ffmpeg = None
        self._cv_writer = None
        self._size: tuple[int, int] | None = None

    def __enter__(self) -> VideoOutput:
        return self

    def write(self, bgr: np.ndarray) -> None:
        if self.path is None:
            self.frames += 1
            return
        if self._size is None:
            self._open(bgr.shape[1], bgr.shape[0])
        if (bgr.shape[1], bgr.shape[0]) != self._size:
            bgr = cv2.resize(bgr, self._size, interpolation=cv2.INTER_AREA)
        if self._ffmpeg is not None:
            self._ffmpeg.send(np.ascontiguousarray(bgr[..., ::-1]).tobytes())
        else:
            self._cv_writer.write(bgr)
        self.frames += 1

    def _open(self, width: int, height: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # yuv420p needs even sides: crop one pixel rather than scale.
        self._size = (width - width % 2, height - height % 2)
        try:
            import imageio_ffmpeg

            self._ffmpeg = imageio_ffmpeg.write_frames(
                str(self.path),
                self._size,
                fps=self.fps,
                codec="libx264",
                pix_fmt_in="rgb24",
                pix_fmt_out="yuv420p",
                macro_block_size=1,
                ffmpeg_log_level="error",
            )
            self._ffmpeg.send(None)  # start the encoder
            self.codec = "h264"
        except (ImportError, RuntimeError, OSError) as exc:
            LOG.warning("H.264 encoder unavailable (%s); writing MPEG-4 with OpenCV", exc)
            self._ffmpeg = None
            fourcc = cv2.VideoWriter_fourcc(*"mp4v")
            self._cv_writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, self._size)
            self.codec = "mp4v"

    def close(self) -> None:
        if self._ffmpeg is not None:
            self._ffmpeg.close()
            self._ffmpeg = None
        if self._cv_writer is not None:
            self._cv_writer.release()
            self._cv_writer = None

    def __exit__(self, *exc_info: object) -> None:
        self.close()
