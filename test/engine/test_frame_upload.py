"""The camera frame to the model's input (engine/steps/frame_upload.py): Meta's exact host
path and the device path, which sends uint8 and resizes where the model runs."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from sam2_ros.engine.hardware import host_sync
from sam2_ros.engine.model_loading import LoadedModel
from sam2_ros.engine.results import HostTransfer
from sam2_ros.engine.steps.frame_upload import FrameUpload, resolve_preprocessing
from sam2_ros.engine.steps.preprocessing import IMG_MEAN, IMG_STD, frame_to_tensor
from sam2_ros.engine.streaming_tracker import StreamingTracker

CPU = torch.device("cpu")


def test_auto_is_the_device_path_on_cuda_only() -> None:
    assert resolve_preprocessing("auto", torch.device("cuda:1")) == "device"
    assert resolve_preprocessing("auto", CPU) == "meta"
    assert resolve_preprocessing("device", CPU) == "device"
    with pytest.raises(ValueError, match="preprocessing must be one of"):
        resolve_preprocessing("pil", CPU)


def test_meta_is_metas_pixels(frames: list[np.ndarray]) -> None:
    assert torch.equal(FrameUpload(64, CPU, "meta")(frames[0]), frame_to_tensor(frames[0], 64, CPU))


@pytest.mark.parametrize("size", [32, 64, 128])
def test_the_device_path_sends_uint8_and_stays_near_pil(
    frames: list[np.ndarray], size: int
) -> None:
    """Down- and upscaled: within a few uint8 levels of PIL on average (PIL rounds between
    its two passes, so single pixels differ more), and the copy is the camera's bytes."""
    upload = FrameUpload(size, CPU, "device")
    upload(frames[2])  # the first frame also copies the normalisation constants
    transfer = HostTransfer()
    with host_sync.counting(transfer):
        on_device = upload(frames[3])
    exact = frame_to_tensor(frames[3], size, CPU)
    assert on_device.shape == exact.shape == (1, 3, size, size)
    levels = (on_device - exact).abs() * torch.tensor(IMG_STD).view(1, 3, 1, 1) * 255
    assert float(levels.mean()) < 1.5
    assert transfer.uploads == 1 and transfer.upload_bytes == frames[3].nbytes
    assert transfer.syncs == 0


@pytest.mark.filterwarnings("error")  # torch warns when it shares a read-only array
@pytest.mark.parametrize("mode", ["device", "meta"])
def test_a_read_only_frame_uploads_without_a_warning_and_intact(
    frames: list[np.ndarray], mode: str
) -> None:
    """The fixture's frames are read-only (as np.frombuffer gives them); at the model's size
    nothing is resized, so the pixels come back exactly, frame after frame (a reused buffer
    must not hold the previous one), and as from a writable copy."""
    warn_always = torch.is_warn_always_enabled()
    torch.set_warn_always(True)  # else torch warns once per process: maybe long before
    try:
        _upload_read_only(frames, mode)
    finally:
        torch.set_warn_always(warn_always)


def _upload_read_only(frames: list[np.ndarray], mode: str) -> None:
    upload = FrameUpload(48, CPU, mode)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in (IMG_MEAN, IMG_STD))
    for rgb in (frames[0][:, :48], frames[5][:, 8:56], frames[0][:, :48]):
        assert not rgb.flags.writeable
        on_device = upload(rgb)
        assert torch.equal(on_device, FrameUpload(48, CPU, mode)(rgb.copy()))
        levels = ((on_device * std + mean) * 255).round().to(torch.uint8)
        assert np.array_equal(levels[0].permute(1, 2, 0).numpy(), rgb)


def test_a_tracker_on_the_device_path_tracks(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    tracker = StreamingTracker(tiny_model, preprocessing="device")
    tracker.track(frames[0], 100)
    tracker.add_prompt(points=[[20.0, 24.0]], labels=[1])
    result = tracker.track(frames[1], 101)
    assert result.objects[0].mask.shape == frames[1].shape[:2]
    assert result.transfer.upload_bytes >= frames[1].nbytes


def test_a_prefetched_frame_is_the_one_tracked_and_counted_as_its_upload(
    tiny_model: LoadedModel, frames: list[np.ndarray]
) -> None:
    """The camera's thread starts frame 2's upload while frame 1 is tracked on the worker;
    tracking frame 2 then uses that copy (no second upload) and counts it as the frame's
    upload, and the masks equal a tracker that uploads every frame itself. A prefetched
    frame replaced by a newer one (dropped) is never used; an array never prefetched is
    uploaded as before."""
    ahead = StreamingTracker(tiny_model, preprocessing="device")
    plain = StreamingTracker(tiny_model, preprocessing="device")
    assert ahead.prefetches and not StreamingTracker(tiny_model, preprocessing="meta").prefetches
    for tracker in (ahead, plain):
        tracker.track(frames[0], 100)
        tracker.add_prompt(points=[[20.0, 24.0]], labels=[1])
    rgb = [f.copy() for f in frames[1:5]]
    worker = threading.Thread(target=ahead.track, args=(rgb[0], 101))
    worker.start()
    given = ahead.prefetch(rgb[1])  # while frame 1 is being tracked
    worker.join()
    assert given is rgb[1]
    plain.track(rgb[0], 101)
    upload = ahead._steps.frames
    for stamp, frame in ((102, given), (103, rgb[2])):
        result = ahead.track(frame, stamp)
        expected = plain.track(frame.copy(), stamp)
        assert result.transfer.uploads == expected.transfer.uploads
        assert result.transfer.upload_bytes == expected.transfer.upload_bytes
        assert np.array_equal(result.objects[0].mask, expected.objects[0].mask)
    assert upload.prefetched_used == 1  # frame 2 only: frame 3 was never prefetched
    ahead.prefetch(rgb[3].copy())  # dropped: a newer frame replaces it before the worker
    ahead.prefetch(rgb[3])
    ahead.track(rgb[3], 104)
    assert upload.prefetched_used == 2


def test_meta_preprocessing_prefetches_nothing(frames: list[np.ndarray]) -> None:
    """Meta's host path would resize every received frame, tracked or dropped."""
    upload = FrameUpload(32, CPU, "meta")
    upload.prefetch(frames[0])
    assert upload._ahead is None
    assert torch.equal(upload(frames[0]), frame_to_tensor(frames[0], 32, CPU))
    assert upload.prefetched_used == 0
