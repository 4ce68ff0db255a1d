"""The table-4 benchmark on a tiny setting: real synthetic drivers, the real face stage, the shipped
classifier and real ONNX generators."""
import json

import numpy as np
import pytest
import torch

from benchmarks import paper_table4, publish_choice
from pipeline.fusion import CROP_YAW, POSE_WEIGHT
from train.export import export_onnx
from train.networks import Generator


@pytest.fixture(scope="module")
def generators(tmp_path_factory):
    root = tmp_path_factory.mktemp("generators")
    torch.manual_seed(0)
    identity = Generator(width=4, num_residual=1, skips=True, residual=True)  # residual at init: the identity
    scrambled = Generator(width=4, num_residual=1)                             # table 1, untrained: re-draws
    paths = {}
    for name, net in (("identity", identity), ("scrambled", scrambled)):
        paths[name] = export_onnx(net.eval(), "uit_generator", root / f"{name}.onnx", image_size=64, width=4)
    return paths


def test_an_identity_generator_reproduces_the_render_row_and_the_figures_are_consistent(generators, tmp_path):
    out = tmp_path / "t4"
    args = paper_table4.build_parser().parse_args([
        "--seeds", "5", "6", "--bins", "0", "30", "--per-bin", "7", "--drivers", "2", "--no-progress",
        "--generator", f"identity={generators['identity']}",
        "--generator", f"scrambled={generators['scrambled']},{generators['scrambled']}", "--out", str(out)])
    result = paper_table4.run(args)
    acc = result["accuracy"]
    assert set(acc) == {"source_crop", "raw_crop", "render", "identity", "scrambled", "identity+render",
                        "scrambled+render", "identity/published", "scrambled/published"}
    for b in ("0", "30"):
        # plumbing: an identity translation classifies exactly as the render, and so does its fusion
        assert acc["identity"][b]["per_seed"] == acc["render"][b]["per_seed"]
        assert acc["identity+render"][b]["per_seed"] == acc["render"][b]["per_seed"]
        assert result["paired"]["identity - render"][b]["mean"] == 0.0
        paired = np.subtract(acc["scrambled"][b]["per_seed"], acc["render"][b]["per_seed"])
        assert np.allclose(result["paired"]["scrambled - render"][b]["per_seed"], paired, atol=0.02)
        # the first generator is the reference the later ones are paired against (here: the render's twin)
        assert result["paired"]["scrambled - identity"][b] == result["paired"]["scrambled - render"][b]
        for row in acc.values():
            assert len(row[b]["per_seed"]) == 2 and 0 <= row[b]["mean"] <= 100
    assert "identity - scrambled" not in result["paired"]
    saved = json.loads((out / "table4.json").read_text())
    assert saved["accuracy"] == acc and saved["generators"]["scrambled"] == [str(generators["scrambled"])] * 2
    assert (out / "table4.png").stat().st_size > 0 and (out / "samples.png").stat().st_size > 0
    # the saved probabilities are the table's faces: every single row's accuracy recomputes from them
    probs = np.load(out / "probs.npz")
    for row in ("raw_crop", "render", "identity", "scrambled"):
        for b in ("0", "30"):
            again = [100 * np.mean(probs[f"{seed}/{b}/{row}"].argmax(1) == probs[f"{seed}/{b}/label"]) for seed in (5, 6)]
            assert np.allclose(again, acc[row][b]["per_seed"], atol=0.01)
    # and publish_choice, pooling them with the benchmark's own pose settings, publishes what the table did
    checked = publish_choice.run(publish_choice.build_parser().parse_args(
        [str(out / "probs.npz"), "--generator", "scrambled", "--check", str(POSE_WEIGHT), str(CROP_YAW),
         "--out", str(tmp_path / "choice")]))["checked"]
    for b in ("0", "30"):
        assert np.allclose(checked["accuracy"][b]["per_seed"], acc["scrambled/published"][b]["per_seed"], atol=0.01)


def test_bad_generator_arguments_are_one_line_errors(generators):
    with pytest.raises(SystemExit, match="NAME=PATH"):
        paper_table4.named_paths(["nothing"], 3)
    with pytest.raises(SystemExit, match="2 models for 3 seeds"):
        paper_table4.named_paths([f"g={generators['identity']},{generators['identity']}"], 3)
    with pytest.raises(SystemExit, match="fixed row"):
        paper_table4.named_paths([f"render={generators['identity']}"], 3)
    with pytest.raises(SystemExit, match="at least two --seeds"):
        paper_table4.main(["--seeds", "1"])
