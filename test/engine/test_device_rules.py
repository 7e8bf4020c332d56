"""The CUDA rules (engine/hardware/device_rules.py), checked without a GPU: the device's capability,
index and synchronisation are faked where a rule reads them."""

from __future__ import annotations

import dataclasses
import threading

import numpy as np
import pytest
import torch

from sam2_ros.engine.hardware.device_rules import place_caches
from sam2_ros.engine.model_loading import LoadedModel, resolve_precision
from sam2_ros.engine.results import StageTiming
from sam2_ros.engine.steps import sam2_steps
from sam2_ros.engine.steps.sam2_steps import Sam2Steps, eager_forward_image


@pytest.mark.parametrize(("capability", "dtype"), [
    ((7, 5), None),  # T4: no native bf16, fp32
    ((7, 0), None),  # V100
    ((7, 2), None),  # Jetson Xavier
    ((8, 0), torch.bfloat16),  # A100
    ((8, 7), torch.bfloat16),  # Jetson Orin
    ((9, 0), torch.bfloat16),  # H100
])
def test_auto_precision_picks_bf16_only_where_the_gpu_has_it(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], dtype: torch.dtype | None
) -> None:
    asked = []

    def fake_capability(device=None):
        asked.append(device)
        return capability

    monkeypatch.setattr(torch.cuda, "get_device_capability", fake_capability)
    assert resolve_precision("auto", torch.device("cuda:1")) == dtype
    assert asked == [torch.device("cuda:1")]  # the configured device, not device 0
    assert resolve_precision("bf16", torch.device("cuda:1")) == torch.bfloat16  # as asked


def test_stage_profiling_syncs_the_configured_device(
    tiny_model: LoadedModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    second = dataclasses.replace(tiny_model, device=torch.device("cuda:1"))
    Sam2Steps(second, profile_stages=True).sync(StageTiming())
    assert synced == [torch.device("cuda:1")]


def test_cached_encodings_move_to_the_configured_device() -> None:
    """Meta's caches built on one device end up on the model's (here "meta" stands in
    for a second GPU)."""
    from sam2.modeling.position_encoding import PositionEmbeddingSine

    pe = PositionEmbeddingSine(32, warmup_cache=False)
    pe.cache[(4, 4)] = torch.zeros(32, 4, 4)
    holder = torch.nn.Module()
    holder.pe = pe
    holder.rope = torch.nn.Module()
    holder.rope.freqs_cis = torch.zeros(16, 4)
    assert place_caches(holder, torch.device("meta")) == 2
    assert pe.cache[(4, 4)].device.type == "meta"
    assert holder.rope.freqs_cis.device.type == "meta"
    assert place_caches(holder, torch.device("meta")) == 0


def test_the_built_model_keeps_its_caches_on_its_device(tiny_model: LoadedModel) -> None:
    caches = [v for m in tiny_model.model.modules()
              for v in (getattr(m, "cache", None) or {}).values()]
    assert caches and all(v.device == tiny_model.device for v in caches)


def test_cuda_graph_outputs_are_cloned_and_other_threads_encode_eagerly(
    tiny_model: LoadedModel, frames: list[np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CUDA graphs the kept features must not be the graph's output buffers, and an
    encode from a second thread (a prompt on a dropped frame) must not run the graph."""
    graphed = dataclasses.replace(tiny_model, cuda_graphs=True)
    steps = Sam2Steps(graphed)
    returned, eager_threads = [], []
    original = graphed.model.forward_image

    def recording(image):
        out = original(image)
        returned.extend(out["backbone_fpn"] + out["vision_pos_enc"])
        return out

    def eager(model, image):
        eager_threads.append(threading.get_ident())
        return eager_forward_image(model, image)

    monkeypatch.setattr(graphed.model, "forward_image", recording)
    monkeypatch.setattr(sam2_steps, "eager_forward_image", eager)
    with torch.inference_mode():
        fpn = steps.encode_image(frames[0], StageTiming())
        kept = {t.data_ptr() for t in fpn + steps.caches.vision_pos_enc}
        assert not kept & {t.data_ptr() for t in returned}
        other: list = []
        worker = threading.Thread(
            target=lambda: other.append(steps.encode_image(frames[1], StageTiming())))
        worker.start()
        worker.join(timeout=60)
        assert other, "the second thread's encode did not finish in 60 s"
    assert eager_threads == [worker.ident]
    with torch.inference_mode():
        again = Sam2Steps(tiny_model).encode_image(frames[1], StageTiming())
    for a, b in zip(other[0], again, strict=True):
        torch.testing.assert_close(a, b)
