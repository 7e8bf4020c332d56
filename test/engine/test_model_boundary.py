"""One boundary between the engine and Meta's SAM2Base (issue 37): ``Sam2Steps`` is the one
module that calls into the model, and the rest of the engine reads the model's settings
from ``ModelFacts``, built once when the model is loaded."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
import torch
from sam2.modeling.sam2_base import SAM2Base

from sam2_ros.engine.model_loading import LoadedModel, build_model
from sam2_ros.engine.steps.model_facts import ModelFacts

ENGINE = Path(__file__).resolve().parents[2] / "sam2_ros" / "engine"
#: The modules that may touch the model: the one door into it, the module that builds it,
#: and the module that reads its facts once.
MAY_TOUCH_THE_MODEL = {"steps/sam2_steps.py", "model_loading.py", "steps/model_facts.py"}
#: SAM2Base's own private methods (``_forward_sam_heads``, ``_encode_new_memory``, ...).
PRIVATE_METHODS = {name for name, value in vars(SAM2Base).items()
                   if name.startswith("_") and not name.startswith("__") and callable(value)}


def touches_of_the_model(source: str) -> list[str]:
    """Where ``source`` reaches into a model: any ``<x>.model`` or ``model.<attr>`` read,
    or a call of one of SAM2Base's private methods on anything (``line: expression``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Attribute):
            continue
        through_model = (node.attr == "model"
                         or (isinstance(node.value, ast.Name) and node.value.id == "model"))
        if through_model or node.attr in PRIVATE_METHODS:
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_the_checker_finds_what_it_forbids() -> None:
    """The static check fails on each way the engine used to reach into the model."""
    snippets = {
        "model._forward_sam_heads(backbone_features=x)": 1,
        "keep = self.model.max_obj_ptrs_in_encoder - 1": 1,
        "ptr = model.obj_ptr_proj(token)": 1,
        "steps._encode_new_memory(current_vision_feats=f)": 1,
        "sam = loaded.model": 1,
        "keep = facts.num_maskmem - 1\nout = steps.object_pointer(token, logits)": 0,
    }
    for source, count in snippets.items():
        assert len(touches_of_the_model(source)) == count, source
    assert {"_forward_sam_heads", "_encode_new_memory", "_prepare_backbone_features",
            "_use_mask_as_output", "_prepare_memory_conditioned_features"} <= PRIVATE_METHODS


def test_only_sam2_steps_reaches_into_the_model() -> None:
    """No engine module but the allowed ones reads the model's attributes or calls its
    private methods: they ask ``Sam2Steps`` or read ``ModelFacts``."""
    modules = {p.relative_to(ENGINE).as_posix(): p for p in ENGINE.rglob("*.py")}
    assert modules.keys() >= MAY_TOUCH_THE_MODEL
    breaches = {rel: touches for rel, path in sorted(modules.items())
                if rel not in MAY_TOUCH_THE_MODEL
                and (touches := touches_of_the_model(path.read_text()))}
    assert not breaches, breaches
    # The door itself does call into the model (the check would see it).
    assert touches_of_the_model((ENGINE / "steps" / "sam2_steps.py").read_text())


def test_model_facts_of_sam2_1_tiny(tiny_model: LoadedModel) -> None:
    """SAM 2.1 tiny at image size 64: the facts as its config and SAM2Base set them."""
    facts = tiny_model.facts
    assert facts == ModelFacts.from_model(tiny_model.model)
    assert (facts.image_size, facts.hidden_dim, facts.mem_dim) == (64, 256, 64)
    assert (facts.num_maskmem, facts.max_obj_ptrs_in_encoder) == (7, 16)
    assert (facts.max_cond_frames_in_attn, facts.memory_temporal_stride_for_eval) == (-1, 1)
    assert facts.use_obj_ptrs_in_encoder and facts.only_obj_ptrs_in_the_past_for_eval
    # SAM 2.1 encodes signed pointer distances, projected to hidden_dim.
    assert facts.add_tpos_enc_to_obj_ptrs and facts.proj_tpos_enc_in_obj_ptrs
    assert facts.use_signed_tpos_enc_to_obj_ptrs
    assert facts.pred_obj_scores and facts.fixed_no_obj_ptr and not facts.soft_no_obj_ptr
    assert facts.use_mask_input_as_output_without_sam and facts.use_high_res_features_in_sam
    for field in dataclasses.fields(ModelFacts):  # named as SAM2Base's attributes
        assert getattr(facts, field.name) == getattr(tiny_model.model, field.name), field.name
    with pytest.raises(dataclasses.FrozenInstanceError):
        facts.num_maskmem = 3  # type: ignore[misc]


def test_model_facts_of_sam2_tiny() -> None:
    """SAM 2 (not 2.1) tiny: its pointers get no temporal encoding, and a copy of a
    ``LoadedModel`` (``dataclasses.replace``) reads the same facts again."""
    torch.manual_seed(0)
    loaded = build_model("sam2_hiera_t", image_size=96, device="cpu", precision="fp32")
    facts = loaded.facts
    assert facts.image_size == 96 and facts.num_maskmem == 7
    assert facts.use_obj_ptrs_in_encoder and not facts.add_tpos_enc_to_obj_ptrs
    assert not facts.proj_tpos_enc_in_obj_ptrs and not facts.use_signed_tpos_enc_to_obj_ptrs
    assert dataclasses.replace(loaded, cuda_graphs=True).facts == facts
