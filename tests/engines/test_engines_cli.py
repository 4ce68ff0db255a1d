"""`python -m train export` and `python -m engines build|bench` on a real training checkpoint
(train.checkpoint + train.networks)."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import engines
from engines.__main__ import main
from train.export import main as export


@pytest.fixture(scope="module")
def uit_checkpoint(tmp_path_factory):
    from train.checkpoint import save_checkpoint
    from train.networks import build_network
    config = {"mode": "uit", "width": 4, "image_size": 64, "num_residual": 2}
    torch.manual_seed(0)
    models = {name: build_network(config, name) for name in ("G_ts", "G_st", "D_s", "D_t")}
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "last.pt", kind="uit_generator", config=config,
                           models=models, step=10)


def test_export_checkpoint_to_onnx_prints_parity(tmp_path, uit_checkpoint, capsys):
    out = tmp_path / "uit.onnx"
    assert export(["--checkpoint", str(uit_checkpoint), "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "uit_generator" and result["width"] == 4 and result["image_size"] == 64
    assert max(result["parity_rel_max"].values()) <= 1e-4
    engine = engines.load(out)
    assert engine.metadata["exprada.width"] == "4"
    assert engine.inputs[0].shape == (None, 3, 64, 64)


def test_export_checkpoint_to_pt2_carries_the_onnx_metadata(tmp_path, uit_checkpoint, capsys):
    onnx_out, pt2_out = tmp_path / "uit.onnx", tmp_path / "uit.pt2"
    for out in (onnx_out, pt2_out):
        assert export(["--checkpoint", str(uit_checkpoint), "--out", str(out)]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["image_size"], r["width"]) for r in printed] == [("uit_generator", 64, 4)] * 2
    assert all(max(r["parity_rel_max"].values()) <= 1e-4 for r in printed)   # the .pt2 checked as the ONNX is
    assert engines.read_metadata(pt2_out) == engines.read_metadata(onnx_out)
    assert engines.load(pt2_out, backend="torch").metadata == engines.load(onnx_out).metadata


def test_export_unknown_network_name_is_refused(tmp_path, uit_checkpoint):
    with pytest.raises(SystemExit, match="^error: .*only generators"):   # one line from `python -m train`
        export(["--checkpoint", str(uit_checkpoint), "--out", str(tmp_path / "d.onnx"), "--name", "D_s"])


@pytest.mark.parametrize("out, expected", [
    ("model.bin", "give a file name ending in .onnx or .pt2"), (".", "give a file name ending in .onnx or .pt2"),
    ("/proc/no-such/uit.onnx", "^error: cannot write /proc/no-such/uit.onnx: "),
])
def test_export_to_a_place_it_cannot_write_is_one_line(tmp_path, uit_checkpoint, out, expected):
    with pytest.raises(SystemExit, match=expected):
        export(["--checkpoint", str(uit_checkpoint), "--out", out if out.startswith("/") else str(tmp_path / out)])


@pytest.mark.parametrize("option", [["--runs", "0"], ["--batch", "1,0"]])
def test_bench_refuses_nothing_to_time(generator_onnx, capsys, option):
    with pytest.raises(SystemExit) as stop:   # --runs 0 was an IndexError
        main(["bench", "--onnx", str(generator_onnx), *option])
    assert stop.value.code == 2 and "bench needs --runs and every --batch size at least 1" in capsys.readouterr().err


def test_bench_prints_latency_per_batch(generator_onnx, capsys):
    assert main(["bench", "--onnx", str(generator_onnx), "--batch", "1,2", "--runs", "3", "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in result["results"]] == [1, 2]
    for r in result["results"]:
        assert 0 < r["p50_ms"] <= r["p99_ms"] and r["throughput_per_s"] > 0


def test_bench_torch_backend_defaults_to_cpu_without_cuda(tmp_path, tiny_generator, capsys):
    import torch
    from train.export import export_program
    if torch.cuda.is_available():
        pytest.skip("checks the CPU defaults; this machine has CUDA")
    path = export_program(tiny_generator, "uit_generator", tmp_path / "g.pt2", image_size=32)
    assert main(["bench", "--onnx", str(path), "--backend", "torch", "--batch", "2", "--runs", "2"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["options"] == {"device": "cpu", "dtype": "float32", "compile": "none"}
    assert result["results"][0]["batch"] == 2


def test_build_onnxruntime_writes_an_optimised_model_with_same_outputs(tmp_path, generator_onnx, capsys):
    out = tmp_path / "opt.onnx"
    assert main(["build", "--onnx", str(generator_onnx), "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["engine"] == str(out)
    a, b = engines.load(generator_onnx), engines.load(out)
    assert b.metadata == a.metadata
    feeds = a.example_feeds(batch=1, fill=0.25)
    np.testing.assert_allclose(a.run(feeds)["translated"], b.run(feeds)["translated"], atol=1e-5)
    with pytest.raises(SystemExit, match="make a int8 model first"):
        main(["build", "--onnx", str(generator_onnx), "--precision", "int8"])


def test_export_classifier_checkpoint(tmp_path, capsys):
    from train.checkpoint import save_checkpoint
    from train.classifier_nets import build_classifier
    config = {"arch": "small", "image_size": 64, "width": 4}
    path = save_checkpoint(tmp_path / "classifier.pt", kind="classifier", config=config,
                           models={"classifier": build_classifier(config)})
    out = tmp_path / "classifier.onnx"
    assert export(["--checkpoint", str(path), "--out", str(out)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "classifier" and max(result["parity_rel_max"].values()) <= 1e-4
    engine = engines.load(out)
    assert [s.name for s in engine.outputs] == ["logits", "embedding"]
    assert engine.run(engine.example_feeds(batch=2))["logits"].shape == (2, 7)
    pt2 = tmp_path / "classifier.pt2"
    assert export(["--checkpoint", str(path), "--out", str(pt2)]) == 0
    capsys.readouterr()
    program = engines.load(pt2, backend="torch")
    assert program.metadata == engine.metadata
    feeds = engine.example_feeds(batch=2, fill=0.2)
    np.testing.assert_allclose(program.run(feeds)["logits"], engine.run(feeds)["logits"], atol=1e-4)


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    """A missing backend or model file is said in one line on stderr, not a traceback."""
    import importlib.util

    from engines.__main__ import main

    assert main(["bench", "--onnx", str(tmp_path / "missing.onnx")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "missing.onnx" in err and "not found" in err
    if importlib.util.find_spec("tensorrt") is None:
        model = Path(__file__).resolve().parents[2] / "models" / "classifier.onnx"
        assert main(["build", "--backend", "tensorrt", "--onnx", str(model)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and "TensorRT is not installed" in err


def test_build_to_a_place_it_cannot_write_names_the_out_not_the_model(tmp_path, generator_onnx, capsys):
    from engines.__main__ import main

    for out, reason in (("/proc/x.onnx", "No such file or directory"), (str(tmp_path), "Is a directory")):
        assert main(["build", "--onnx", str(generator_onnx), "--out", out]) == 2   # was: "could not be loaded"
        assert capsys.readouterr().err.strip() == f"python -m engines build: --out {out}: cannot write: {reason}"
