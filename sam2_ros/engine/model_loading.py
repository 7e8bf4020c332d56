"""Build Meta's SAM 2 model (``SAM2Base``) from a config and an official checkpoint.

Why not ``build_sam2_video_predictor``: the streaming engine drives SAM2Base's own steps
frame by frame and must not inherit the offline predictor's keep-everything state. The
model is still built from Meta's config files with the same post-processing options the
official video predictor switches on, so both produce the same masks for the same weights.
"""

from __future__ import annotations

import logging
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from sam2_ros.engine.hardware.device_rules import auto_dtype, place_caches
from sam2_ros.engine.steps.model_facts import ModelFacts
from sam2_ros.engine.steps.preprocessing import frame_to_tensor
from sam2_ros.errors import CheckpointError, ModelConfigError
from sam2_ros.settings import PARAMETERS, PRECISIONS, default

LOG = logging.getLogger(__name__)

# Model names (the official checkpoint file stems without the size word) -> config files
# inside the sam2 package.
MODEL_CONFIGS: dict[str, str] = {
    "sam2.1_hiera_t": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "sam2.1_hiera_s": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "sam2.1_hiera_b+": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "sam2.1_hiera_l": "configs/sam2.1/sam2.1_hiera_l.yaml",
    "sam2_hiera_t": "configs/sam2/sam2_hiera_t.yaml",
    "sam2_hiera_s": "configs/sam2/sam2_hiera_s.yaml",
    "sam2_hiera_b+": "configs/sam2/sam2_hiera_b+.yaml",
    "sam2_hiera_l": "configs/sam2/sam2_hiera_l.yaml",
}

#: The project's own demo model (sam2_ros/models/): its config and its bundled checkpoint,
#: trained by `sam2_ros train` on synthetic scenes. Used without a checkpoint argument.
DEMO_MODEL = "sam2_ros_demo"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
BUNDLED_CHECKPOINTS: dict[str, Path] = {DEMO_MODEL: MODELS_DIR / f"{DEMO_MODEL}.pt"}

# Official checkpoint file names, for the README and for error messages.
CHECKPOINT_FILES: dict[str, str] = {
    "sam2.1_hiera_t": "sam2.1_hiera_tiny.pt",
    "sam2.1_hiera_s": "sam2.1_hiera_small.pt",
    "sam2.1_hiera_b+": "sam2.1_hiera_base_plus.pt",
    "sam2.1_hiera_l": "sam2.1_hiera_large.pt",
    "sam2_hiera_t": "sam2_hiera_tiny.pt",
    "sam2_hiera_s": "sam2_hiera_small.pt",
    "sam2_hiera_b+": "sam2_hiera_base_plus.pt",
    "sam2_hiera_l": "sam2_hiera_large.pt",
}

# (patch embedding width, number of Hiera blocks) of each size, to name the config a
# mismatching checkpoint probably belongs to without building every model.
_HIERA_SIGNATURES: dict[tuple[int, int], str] = {
    (96, 12): "t",
    (96, 16): "s",
    (112, 24): "b+",
    (144, 48): "l",
}

# The options Meta's build_sam2_video_predictor adds on top of the config files
# (apply_postprocessing=True). The hole filling option belongs to the predictor class,
# so the engine applies it itself (see StreamingTracker's fill_hole_area).
_VIDEO_POSTPROCESSING = {
    "sam_mask_decoder_extra_args": {
        "dynamic_multimask_via_stability": True,
        "dynamic_multimask_stability_delta": 0.05,
        "dynamic_multimask_stability_thresh": 0.98,
    },
    "binarize_mask_from_pts_for_mem_enc": True,
}
VIDEO_FILL_HOLE_AREA = 8


@dataclass
class LoadedModel:
    """A ready SAM2Base with the settings the engine needs to run it: the part every
    tracking session (``StreamingTracker``) of one process may share, from any thread."""

    model: torch.nn.Module
    config_path: str
    device: torch.device
    autocast_dtype: torch.dtype | None  # None = run in float32
    image_size: int
    random_weights: bool
    weights: str = ""  # one sentence on what the weights are, for logs and run summaries
    # The image encoder runs as CUDA graphs (compile on CUDA): its outputs are reused.
    cuda_graphs: bool = False
    # What depends only on the model and image size, shared by every tracking session of
    # it (position encodings, RoPE tables, the decoder-token hook): made on first use by
    # ``steps.sam2_steps.model_caches``; a copy (dataclasses.replace) starts without.
    caches: object = field(default=None, init=False, repr=False, compare=False)
    # The model's settings the engine reads (``steps.model_facts``), read once here.
    facts: ModelFacts = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Read the model's facts once, for every session of it."""
        self.facts = ModelFacts.from_model(self.model)


def resolve_device(device: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu; anything else is passed to torch."""
    if device in ("", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError as exc:
        raise ModelConfigError(f"unknown device {device!r}: {exc}") from exc
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ModelConfigError(f"device {device!r} asked for, but CUDA is not available")
    return resolved


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (Linux; elsewhere none)."""
    try:
        return frozenset(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return frozenset()


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AMX or AVX512_BF16).

    Without it torch emulates bf16 and autocast makes CPU inference slower, not faster.
    """
    return bool(cpu_flags() & {"amx_bf16", "avx512_bf16"})


def cpu_autocast_dtype(precision: str) -> torch.dtype | None:
    """The CPU autocast dtype for a precision setting (None = float32)."""
    return resolve_precision(precision, torch.device("cpu"))


def resolve_precision(precision: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: 'auto' is bf16 on GPUs and CPUs that compute it natively, else
    float32 (``device_rules.auto_dtype``).

    The accepted names and their synonyms are the precision parameter's (settings)."""
    reason = PARAMETERS["precision"].check(precision)
    if reason:
        raise ModelConfigError(reason)
    meant = PRECISIONS[precision]
    if meant is None:
        return auto_dtype(device, device.type == "cpu" and cpu_has_native_bf16())
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[meant]


def resolve_config(model: str) -> Path:
    """A known model name, or a path to a SAM 2 config YAML file."""
    import sam2

    if model in MODEL_CONFIGS:
        return Path(sam2.__path__[0]) / MODEL_CONFIGS[model]
    if model == DEMO_MODEL:
        return MODELS_DIR / f"{DEMO_MODEL}.yaml"
    path = Path(model).expanduser()
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise ModelConfigError(f"model config file not found: {path}")
        return path
    known = ", ".join([DEMO_MODEL, *MODEL_CONFIGS])
    raise ModelConfigError(f"unknown model {model!r}: give one of {known} or a config .yaml path")


def uses_random_weights(model: str, checkpoint: str | os.PathLike | None) -> bool:
    """Whether a model runs on random weights: no checkpoint given and none bundled."""
    return not str(checkpoint or "") and model not in BUNDLED_CHECKPOINTS


def describe_weights(model: str, checkpoint: str | os.PathLike | None) -> str:
    """The one sentence that says what weights a model runs with (the node's log, replay's
    and the demo's summaries), known before the model is built."""
    if str(checkpoint or ""):
        return f"checkpoint {checkpoint}"
    if model in BUNDLED_CHECKPOINTS:
        return f"bundled weights of {model} (trained on synthetic scenes by this project)"
    return "RANDOM weights (no checkpoint): the pipeline is real, the masks mean nothing"


def build_model(
    model: str = default("model"),
    checkpoint: str | os.PathLike | None = None,
    device: str = "auto",
    precision: str = "auto",
    image_size: int | None = None,
    compile_image_encoder: bool = False,
    seed: int = 0,
) -> LoadedModel:
    """SAM2Base from a config and a checkpoint: the one given, else the model's bundled
    one. Without either the weights are random (drawn from ``seed``): only good for tests
    and demos, which is why a loud warning is logged.

    Args:
        model: a model name (``sam2_ros_demo``, ``sam2.1_hiera_t`` ...) or a config .yaml.
        checkpoint: Meta's format (``{"model": state_dict}``), loaded strictly.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` (autocast of the steps).
        image_size: the model's input side in pixels; None or 0: the config's.
        compile_image_encoder: torch.compile the image encoder (Meta's settings).
        seed: the random weights' seed when there is no checkpoint.
    Returns:
        The LoadedModel every tracking session of this model shares.
    Raises:
        ModelConfigError: an unknown model, config, device or precision.
        CheckpointError: a missing, unreadable or mismatched checkpoint.
    """
    config_path = resolve_config(model)
    torch_device = resolve_device(device)
    autocast_dtype = resolve_precision(precision, torch_device)
    cfg = _model_config(config_path, image_size, compile_image_encoder, torch_device)
    weights = describe_weights(model, checkpoint)
    random_weights = uses_random_weights(model, checkpoint)
    if not str(checkpoint or "") and model in BUNDLED_CHECKPOINTS:
        checkpoint = BUNDLED_CHECKPOINTS[model]
    sam = _instantiate(cfg, torch_device, seed)
    if random_weights:
        LOG.warning(
            "NO CHECKPOINT: SAM 2 (%s) runs with RANDOM weights; its masks mean nothing. "
            "Use this for tests and demos only; pass a checkpoint for real tracking.",
            config_path.name,
        )
    else:
        load_checkpoint(sam, Path(checkpoint), config_path)
    sam = _ready_on_device(sam, config_path, autocast_dtype, torch_device)
    if compile_image_encoder and torch_device.type == "cpu":
        _compile_encoder_on_cpu(sam, config_path, autocast_dtype, torch_device)
    precision_name = str(autocast_dtype).replace("torch.", "") if autocast_dtype else "float32"
    LOG.info("SAM 2 %s on %s, %s", config_path.stem, torch_device, precision_name)
    return LoadedModel(
        model=sam,
        config_path=str(config_path),
        device=torch_device,
        autocast_dtype=autocast_dtype,
        image_size=int(sam.image_size),
        random_weights=random_weights,
        weights=weights,
        cuda_graphs=bool(cfg.model.compile_image_encoder),
    )


def _model_config(config_path: Path, image_size: int | None, compile_image_encoder: bool,
                  device: torch.device):
    """Meta's config as SAM2Base with the video predictor's post-processing, at
    ``image_size`` (None or 0: the config's own), resolved."""
    from omegaconf import OmegaConf

    try:
        cfg = OmegaConf.load(config_path)
    except Exception as exc:
        raise ModelConfigError(f"cannot read model config {config_path}: {exc}") from exc
    if "model" not in cfg:
        raise ModelConfigError(f"{config_path} is not a SAM 2 model config (no 'model' key)")
    cfg.model._target_ = "sam2.modeling.sam2_base.SAM2Base"
    OmegaConf.update(cfg, "model", _VIDEO_POSTPROCESSING, merge=True)
    if image_size:
        reason = PARAMETERS["image_size"].check(image_size)
        if reason:
            raise ModelConfigError(reason)
        cfg.model.image_size = int(image_size)
    # On CUDA Meta's own switch (max-autotune); on a CPU our freezing compile, afterwards.
    cfg.model.compile_image_encoder = bool(compile_image_encoder) and device.type == "cuda"
    OmegaConf.resolve(cfg)
    return cfg


def _instantiate(cfg, device: torch.device, seed: int) -> torch.nn.Module:
    """The model of ``cfg``; its random weights come from ``seed`` (reproducible runs
    without a checkpoint), without touching the caller's random state."""
    from hydra.utils import instantiate

    with torch.random.fork_rng(devices=[]), _current_cuda(device):
        torch.manual_seed(seed)
        return instantiate(cfg.model, _recursive_=True)


def _ready_on_device(sam: torch.nn.Module, config_path: Path,
                     autocast_dtype: torch.dtype | None, device: torch.device) -> torch.nn.Module:
    """The model in eval mode on ``device`` with its caches there, matmul weights stored in
    autocast's dtype on a CPU, and one image encoded to prove it runs at its size."""
    sam = sam.to(device).eval()
    place_caches(sam, device)
    if autocast_dtype is not None and device.type == "cpu":
        store_matmul_weights_as(sam, autocast_dtype)
    _check_image_size_runs(sam, config_path, autocast_dtype, device)
    return sam


def _compile_encoder_on_cpu(sam: torch.nn.Module, config_path: Path,
                            autocast_dtype: torch.dtype | None, device: torch.device) -> None:
    """``compile`` on a CPU: the image encoder compiled now with Inductor's freezing.

    Freezing makes the weights constants, so oneDNN gets them prepacked and autocast's bf16
    casts of them are folded in once instead of run per frame. It is set while the graph
    compiles, after the eager pass that filled Meta's position-encoding cache (each chosen
    as measured: docs/benchmarks.md, "compile: true on a CPU"). The weights must not change
    afterwards, which holds for inference.
    """
    import torch._inductor.config as inductor_config

    sam.image_encoder = torch.compile(sam.image_encoder, dynamic=False)
    try:
        with inductor_config.patch(freezing=True):
            _check_image_size_runs(sam, config_path, autocast_dtype, device)
    except Exception as exc:  # inductor needs a C++ compiler and Python headers
        raise ModelConfigError(
            f"compiling the image encoder failed ({type(exc).__name__}: {exc}); "
            "set compile to false"
        ) from exc


def _current_cuda(device: torch.device):
    """Make ``device`` the current CUDA device while Meta's modules are built (they put
    caches on plain "cuda"); nothing to do elsewhere."""
    import contextlib

    if device.type == "cuda" and device.index is not None:
        return torch.cuda.device(device)
    return contextlib.nullcontext()


#: Modules whose weights autocast casts to its lower precision at every call.
MATMUL_MODULES = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)


def store_matmul_weights_as(model: torch.nn.Module, dtype: torch.dtype) -> int:
    """Keep linear and convolution weights in autocast's dtype; returns how many modules.

    Why: autocast caches its weight casts only for tensors that require grad, so at
    inference it re-casts every weight on every call, much of a small frame on a CPU.
    Stored in bf16 they are cast once; autocast would have produced the same bf16 values,
    so masks are unchanged (docs/benchmarks.md, "bf16 weights stored once"). Norms,
    embeddings and everything autocast keeps in fp32 stay fp32. Every model call must then
    run under autocast, as the engine's do.
    """
    count = 0
    for module in model.modules():
        if isinstance(module, MATMUL_MODULES):
            module.to(dtype)
            count += 1
    return count


def _check_image_size_runs(
    sam: torch.nn.Module, config_path: Path, autocast_dtype: torch.dtype | None,
    device: torch.device,
) -> None:
    """Encode one blank image now, so a model that cannot run at this image_size fails
    here with a clear message instead of on every camera frame.

    Why: Hiera's windowed attention only works where each stage's window fits its pooled
    feature map; sam2_ros_demo's small windows fail at some sizes (320 and 512, measured)
    with a reshape error deep inside Meta's code. The pass also takes the first frame's
    one-off allocations out of the stream (its cost: docs/benchmarks.md).
    """
    size = int(sam.image_size)
    try:
        with torch.inference_mode(), torch.autocast(
            device.type, dtype=autocast_dtype or torch.bfloat16, enabled=autocast_dtype is not None
        ):
            # Made as the tracker makes camera frames (in inference mode, the same memory
            # layout): a compiled encoder is specialised on both, another kind recompiles.
            blank = frame_to_tensor(np.zeros((size, size, 3), np.uint8), size, device)
            sam.forward_image(blank)
    except RuntimeError as exc:
        raise ModelConfigError(
            f"{config_path.stem} cannot run at image_size {size} ({exc}); use the model's "
            "own size (image_size 0)"
        ) from exc


def load_checkpoint(model: torch.nn.Module, path: Path, config_path: Path) -> None:
    """Load an official ``{"model": state_dict}`` checkpoint strictly, with clear errors."""
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint is not a file: {path}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"cannot read checkpoint {path} (corrupt or not a torch file): {exc}"
        ) from exc
    if not isinstance(data, dict) or "model" not in data or not isinstance(data["model"], dict):
        raise CheckpointError(
            f"{path} is not an official SAM 2 checkpoint: expected a dict with a 'model' state_dict"
        )
    state = data["model"]
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong_shape = sorted(
        k for k in set(state) & set(expected) if tuple(state[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or wrong_shape:
        guess = guess_checkpoint_model(state)
        hint = f"; it looks like a {guess} checkpoint" if guess else ""
        raise CheckpointError(
            f"checkpoint {path.name} does not match config {config_path.name}: "
            f"{len(missing)} missing, {len(unexpected)} unexpected and {len(wrong_shape)} "
            f"mis-shaped tensors (e.g. {(missing + unexpected + wrong_shape)[:3]}){hint}"
        )
    model.load_state_dict(state, strict=True)
    LOG.info("loaded SAM 2 checkpoint %s", path)


def guess_checkpoint_model(state: dict[str, torch.Tensor]) -> str | None:
    """Name the model config a state_dict probably belongs to, from keys and shapes."""
    patch = state.get("image_encoder.trunk.patch_embed.proj.weight")
    if patch is None:
        return None
    blocks = {
        int(k.split(".")[3])
        for k in state
        if k.startswith("image_encoder.trunk.blocks.") and k.split(".")[3].isdigit()
    }
    size = _HIERA_SIGNATURES.get((int(patch.shape[0]), len(blocks)))
    if size is None:
        return None
    version = "sam2.1" if "no_obj_embed_spatial" in state else "sam2"
    return f"{version}_hiera_{size}"
