"""The ONNX Runtime engine: specs, metadata, running batches, and every bad input refused clearly."""
import json

import numpy as np
import onnx
import pytest

import engines
from engines import EngineFileError, NonFiniteOutputError, check_finite


def test_specs_and_metadata_follow_the_contract(generator_onnx):
    engine = engines.load(generator_onnx)
    assert [(s.name, s.shape, s.dtype) for s in engine.inputs] == [
        ("image", (None, 3, 64, 64), np.float32), ("side_map", (None, 3, 64, 64), np.float32)]
    assert [s.name for s in engine.outputs] == ["translated", "side_map_out"]
    assert engine.metadata["exprada.kind"] == "uit_generator"
    assert engine.metadata["exprada.image_size"] == "64"
    assert engine.metadata["exprada.width"] == "8"
    assert engine.metadata["exprada.normalization"] == "x/127.5-1"
    assert json.loads(engine.metadata["exprada.classes"])[3] == "happiness"
    assert len(engine.metadata["exprada.config_sha256"]) == 64


@pytest.mark.parametrize("batch", [1, 3])
def test_run_returns_named_outputs_in_range(generator_onnx, batch):
    engine = engines.load(generator_onnx, threads=1)
    engine.warmup(runs=1)
    rng = np.random.default_rng(0)
    feeds = {s.name: rng.uniform(-1, 1, (batch, 3, 64, 64)).astype(np.float32) for s in engine.inputs}
    out = check_finite(engine.run(feeds))
    assert set(out) == {"translated", "side_map_out"}
    assert out["translated"].shape == (batch, 3, 64, 64)
    assert np.abs(out["translated"]).max() <= 1.0  # tanh head
    # one batch of N equals N batches of one: the dynamic batch axis does not mix samples
    single = engine.run({k: v[-1:] for k, v in feeds.items()})
    np.testing.assert_allclose(single["translated"][0], out["translated"][-1], atol=1e-5)


def test_classifier_outputs(classifier_onnx):
    engine = engines.load(classifier_onnx)
    out = engine.run(engine.example_feeds(batch=2, fill=0.5))
    assert out["logits"].shape == (2, 7)
    assert out["embedding"].shape[0] == 2


def test_wrong_shape_dtype_channels_and_names_are_refused(generator_onnx):
    engine = engines.load(generator_onnx)
    good = engine.example_feeds(batch=1)
    with pytest.raises(ValueError, match=r"'image' shape expected \[N,3,64,64\], got \[1,1,64,64\].*channels: expected 3, got 1"):
        engine.run({**good, "image": np.zeros((1, 1, 64, 64), np.float32)})
    with pytest.raises(ValueError, match=r"expected \[N,3,64,64\], got \[1,3,32,32\]"):
        engine.run({**good, "image": np.zeros((1, 3, 32, 32), np.float32)})
    with pytest.raises(ValueError, match=r"4 axes expected, 3 given"):
        engine.run({**good, "image": np.zeros((3, 64, 64), np.float32)})
    with pytest.raises(ValueError, match=r"'side_map' dtype expected float32, got uint8"):
        engine.run({**good, "side_map": np.zeros((1, 3, 64, 64), np.uint8)})
    with pytest.raises(ValueError, match=r"missing \['side_map'\]"):
        engine.run({"image": good["image"]})
    with pytest.raises(ValueError, match=r"unknown \['extra'\]"):
        engine.run({**good, "extra": good["image"]})
    with pytest.raises(ValueError, match=r"batch 2 differs from the other inputs' batch 1"):
        engine.run({**good, "side_map": np.zeros((2, 3, 64, 64), np.float32)})
    with pytest.raises(TypeError, match="numpy array"):
        engine.run({**good, "image": good["image"].tolist()})


def test_missing_and_corrupt_files_name_the_file(tmp_path, generator_onnx):
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        engines.load(tmp_path / "nothing.onnx")
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"\x08\x07this is not a protobuf" * 10)
    with pytest.raises(EngineFileError, match="corrupt.onnx"):
        engines.load(corrupt)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(generator_onnx.read_bytes()[:5000])
    with pytest.raises(EngineFileError, match="truncated.onnx"):
        engines.load(truncated)


def test_unknown_backend_and_provider(generator_onnx):
    with pytest.raises(ValueError, match="unknown backend 'tflite'"):
        engines.load(generator_onnx, backend="tflite")
    with pytest.raises(ValueError, match="model.pt2 is a torch.export program; load it with backend='torch'"):
        engines.load("model.pt2")
    with pytest.raises(ValueError, match="the torch backend runs torch.export programs .*python -m train export"):
        engines.load(generator_onnx, backend="torch")   # was: "could not be loaded: File is not a zip file"
    with pytest.raises(ValueError, match="not available here"):
        engines.load(generator_onnx, providers=["NoSuchExecutionProvider"])
    with pytest.raises(ValueError, match="not among the providers"):
        engines.load(generator_onnx, provider_options={"cuda": {"device_id": 0}})
    engine = engines.load(generator_onnx, providers="cpu", provider_options={"cpu": {}})
    assert engine.providers == ["CPUExecutionProvider"]


def test_nan_in_outputs_is_detected(tmp_path):
    # A graph that divides by its input: 0/0 is NaN, so a zero frame produces NaN in the output.
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 4, 4])
    y = helper.make_tensor_value_info("out", TensorProto.FLOAT, ["batch", 3, 4, 4])
    graph = helper.make_graph([helper.make_node("Div", ["image", "image"], ["out"])], "div", [x], [y])
    path = tmp_path / "div.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    engine = engines.load(path)
    ok = engine.run({"image": np.ones((1, 3, 4, 4), np.float32)})
    assert check_finite(ok) is ok
    with pytest.raises(NonFiniteOutputError, match=r"'out' \(48 of 48 values NaN/Inf\)"):
        check_finite(engine.run({"image": np.zeros((1, 3, 4, 4), np.float32)}), where=str(path))
