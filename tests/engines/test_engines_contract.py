"""The model contract: kinds, tensor names and metadata written by export — the same through ONNX and
.pt2 — read back by `ModelInfo`, with an error naming the file for anything missing or malformed."""
import json
import re

import onnx
import pytest
import torch

import engines
from engines import trt_cache
from engines.contract import CLASSES, INPUTS, KINDS, OUTPUTS, MetadataError, ModelInfo, current_kind, read_metadata
from train.export import export_onnx, export_program
from face.expressions import EXPRESSIONS
from tiny_nets import TinyClassifier, TinyGenerator, seeded

NETWORKS = {"uit_generator": lambda: TinyGenerator(8), "cgit_generator": lambda: TinyGenerator(8, n_classes=7),
            "classifier": lambda: TinyClassifier(8)}


@pytest.mark.parametrize("kind", KINDS)
def test_onnx_and_pt2_exports_carry_the_same_metadata(tmp_path, kind):
    module = seeded(NETWORKS[kind](), seed=2)
    config = {"width": 8, "image_size": 32, "run": kind}
    onnx_path = export_onnx(module, kind, tmp_path / f"{kind}.onnx", config=config, image_size=32)
    pt2_path = export_program(module, kind, tmp_path / f"{kind}.pt2", config=config, image_size=32)
    metadata = read_metadata(onnx_path)
    assert read_metadata(pt2_path) == metadata
    info = ModelInfo.of(onnx_path)
    assert info == ModelInfo.of(pt2_path)
    assert (info.kind, info.classes, info.image_size, info.width, info.precision) == (kind, EXPRESSIONS, 32, 8, "fp32")
    assert len(info.config_sha256) == 64 and info.to_metadata() == metadata
    # The runtimes see the same metadata, and the engines' tensors are the ones the contract names.
    ort_engine, torch_engine = engines.load(onnx_path), engines.load(pt2_path, backend="torch")
    assert ort_engine.metadata == torch_engine.metadata == metadata
    for engine in (ort_engine, torch_engine):
        assert engine.info == info
        assert tuple(s.name for s in engine.inputs) == INPUTS[kind] == info.inputs
        assert tuple(s.name for s in engine.outputs) == OUTPUTS[kind] == info.outputs


def test_the_kinds_vocabulary():
    from train.checkpoint import KINDS as CHECKPOINT_FILE_KINDS

    assert CHECKPOINT_FILE_KINDS is KINDS   # checkpoints and exported models: one vocabulary
    assert current_kind("exprada-uit") == "uit_generator" and current_kind("exprada-cgit") == "cgit_generator"
    assert [current_kind(kind) for kind in KINDS] == list(KINDS)
    assert CLASSES == EXPRESSIONS


def _with_metadata(source, out, change: dict):
    """A copy of an ONNX file with its metadata changed (a value of None removes the key)."""
    model = onnx.load(str(source))
    values = {p.key: p.value for p in model.metadata_props}
    values.update(change)
    del model.metadata_props[:]
    for key, value in values.items():
        if value is not None:
            model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(out))
    return out


@pytest.mark.parametrize("key", ["exprada.kind", "exprada.classes", "exprada.image_size"])
def test_a_missing_key_is_named_with_the_file(tmp_path, classifier_onnx, key):
    path = _with_metadata(classifier_onnx, tmp_path / "bare.onnx", {key: None})
    with pytest.raises(MetadataError, match="^" + re.escape(f"{path}: no {key} in its metadata; was it written by")):
        ModelInfo.of(path)
    with pytest.raises(MetadataError, match=re.escape(f"{path}: no {key}")):
        engines.load(path).info


@pytest.mark.parametrize("key,value,expected", [
    ("exprada.kind", "detector", "uit_generator | cgit_generator | classifier"),
    ("exprada.classes", "anger,fear", "a JSON list of class names"),
    ("exprada.classes", "[]", "a JSON list of class names"),
    ("exprada.image_size", "64px", "a positive integer"),
    ("exprada.image_size", "0", "a positive integer"),
    ("exprada.width", "wide", "a positive integer"),
    ("exprada.normalization", "x/255", "x/127.5-1"),
    ("exprada.precision", "int4", "fp32 | fp16 | int8"),
    ("exprada.quantization", "[1, 2]", "a JSON object"),
])
def test_a_malformed_value_is_named_with_the_file(tmp_path, classifier_onnx, key, value, expected):
    path = _with_metadata(classifier_onnx, tmp_path / "odd.onnx", {key: value})
    message = f"{path}: {key} is {value!r}, expected {expected}"
    with pytest.raises(MetadataError) as error:
        ModelInfo.of(path)
    assert str(error.value) == message


def test_optional_keys_and_precision(tmp_path, classifier_onnx):
    path = _with_metadata(classifier_onnx, tmp_path / "q.onnx", {
        "exprada.width": None, "exprada.normalization": None, "exprada.config_sha256": None,
        "exprada.precision": "int8", "exprada.quantization": json.dumps({"method": "percentile", "target": "cpu"})})
    info = ModelInfo.of(path)
    assert info.width is None and info.config_sha256 == ""
    assert info.precision == "int8" and info.quantization["target"] == "cpu"
    assert ModelInfo.from_metadata(info.to_metadata(), path) == info


def test_files_that_are_not_models(tmp_path, tiny_classifier):
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        ModelInfo.of(tmp_path / "absent.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"garbage" * 10)
    with pytest.raises(MetadataError, match=re.escape(f"{corrupt}: not a readable model file")):
        read_metadata(corrupt)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(MetadataError, match=r"notes.txt: not a model file \(.onnx or .pt2\)"):
        read_metadata(tmp_path / "notes.txt")
    program = torch.export.export(seeded(tiny_classifier), (torch.zeros(1, 3, 32, 32),))
    torch.export.save(program, str(tmp_path / "foreign.pt2"))   # a program without our extra files
    with pytest.raises(MetadataError, match="foreign.pt2: no exprada_metadata.json in the program"):
        read_metadata(tmp_path / "foreign.pt2")


def test_a_tensorrt_plan_points_to_its_onnx_file(tmp_path, generator_onnx):
    """A plan's metadata lives in the engine cache's sidecar, read by the TensorRT backend itself."""
    plan, sidecar = trt_cache.cache_paths(tmp_path, generator_onnx, "fp16")
    key = trt_cache.EngineKey("a" * 64, "10.9.0", "GPU", "9.0", "fp16", ())
    trt_cache.store(plan, sidecar, key, b"plan bytes", read_metadata(generator_onnx))
    with pytest.raises(MetadataError, match="a TensorRT plan carries no metadata of its own; read the ONNX"):
        ModelInfo.of(plan)
    assert trt_cache.read_sidecar(sidecar)["metadata"] == read_metadata(generator_onnx)


def test_expect_names_the_file_and_the_kinds(generator_onnx):
    info = ModelInfo.of(generator_onnx)
    assert info.expect("uit_generator") is info
    with pytest.raises(MetadataError,
                       match=re.escape(f"{generator_onnx} is a uit_generator model; expected classifier")):
        info.expect("classifier")


def test_the_pipeline_reads_its_models_through_the_contract(tmp_path, generator_onnx, classifier_onnx):
    from pipeline.config import PipelineConfig, resolve_models

    config = resolve_models(PipelineConfig(generator=str(generator_onnx), classifier=str(classifier_onnx)))
    assert config.image_size == 64 and config.classes == EXPRESSIONS
    with pytest.raises(MetadataError, match="is a classifier model; expected uit_generator"):
        resolve_models(PipelineConfig(generator=str(classifier_onnx), classifier=str(generator_onnx)))
    renamed = _with_metadata(classifier_onnx, tmp_path / "renamed.onnx", {"exprada.classes": '["calm", "tense"]'})
    assert resolve_models(PipelineConfig(generator=str(generator_onnx), classifier=str(renamed))).classes == \
        ("calm", "tense")
