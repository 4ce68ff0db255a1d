"""PyTorch backend on a torch.export program: same answers as ONNX Runtime, same interface and checks."""
import numpy as np
import pytest
import torch

import engines
from train.export import export_program

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


@pytest.fixture(scope="module")
def generator_pt2(tmp_path_factory, tiny_generator):
    return export_program(tiny_generator, "uit_generator", tmp_path_factory.mktemp("pt2") / "uit.pt2",
                          config={"width": 8}, image_size=64)


def test_torch_engine_matches_onnxruntime(generator_pt2, generator_onnx):
    torch_engine = engines.load(generator_pt2, backend="torch")
    ort_engine = engines.load(generator_onnx)
    assert [s.name for s in torch_engine.inputs] == [s.name for s in ort_engine.inputs]
    assert [s.name for s in torch_engine.outputs] == ["translated", "side_map_out"]
    assert torch_engine.outputs[0].shape == (None, 3, 64, 64)
    assert torch_engine.metadata["exprada.kind"] == "uit_generator"
    feeds = {s.name: np.random.default_rng(1).uniform(-1, 1, (3, 3, 64, 64)).astype(np.float32)
             for s in torch_engine.inputs}
    a, b = torch_engine.run(feeds), ort_engine.run(feeds)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-4)


@pytest.mark.parametrize("dtype,channels_last", [("bfloat16", False), ("float16", True)])
def test_torch_engine_half_precision_on_cpu_stays_close(generator_pt2, dtype, channels_last):
    full = engines.load(generator_pt2, backend="torch")
    half = engines.load(generator_pt2, backend="torch", dtype=dtype, channels_last=channels_last)
    feeds = full.example_feeds(batch=2, fill=0.3)
    a, b = full.run(feeds), half.run(feeds)
    assert b["translated"].dtype == np.float32
    assert np.abs(a["translated"] - b["translated"]).max() < 0.1  # bf16 has an 8-bit mantissa


def test_torch_engine_bad_input_and_files(tmp_path, generator_pt2):
    engine = engines.load(generator_pt2, backend="torch")
    with pytest.raises(ValueError, match=r"channels: expected 3, got 4"):
        engine.run({"image": np.zeros((1, 4, 64, 64), np.float32), "side_map": np.zeros((1, 3, 64, 64), np.float32)})
    with pytest.raises(FileNotFoundError, match="absent.pt2"):
        engines.load(tmp_path / "absent.pt2", backend="torch")
    corrupt = tmp_path / "corrupt.pt2"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(engines.EngineFileError, match="corrupt.pt2"):
        engines.load(corrupt, backend="torch")
    with pytest.raises(ValueError, match="needs a CUDA device"):
        engines.load(generator_pt2, backend="torch", compile="graph")


@CUDA
@pytest.mark.cuda
@pytest.mark.parametrize("compile", ["none", "graph", "compile"])
def test_cuda_fast_paths_match_fp32(generator_pt2, compile):
    reference = engines.load(generator_pt2, backend="torch")
    fast = engines.load(generator_pt2, backend="torch", device="cuda", dtype="float16", compile=compile)
    fast.warmup(runs=2, batch=2)
    feeds = reference.example_feeds(batch=2, fill=0.2)
    a, b = reference.run(feeds), fast.run(feeds)
    assert np.abs(a["translated"] - b["translated"]).max() < 0.02
    # a second batch size gets its own graph and still answers correctly
    single = fast.run({k: v[:1] for k, v in feeds.items()})
    np.testing.assert_allclose(single["translated"][0], b["translated"][0], atol=1e-2)
