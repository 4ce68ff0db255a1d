"""Export: the ONNX graph matches PyTorch (parity), carries the contract's names and metadata, and the
head-merging rewrite changes nothing numerically."""
import numpy as np
import onnx
import pytest
import torch

import engines
from train.export import example_inputs, export_onnx, parity
from engines.onnx_rewrite import merge_sibling_convs
from tiny_nets import TinyClassifier, TinyGenerator, seeded

PARITY = 1e-4  # max |ONNX − torch| relative to the output range (issue 5)


def _real_inputs(image_size):
    """What the car feeds the generator: the face stage's frontal render and side map of a real photo
    (skimage's astronaut, read from the installed package), flipped for a batch of two."""
    import cv2
    from skimage import data

    from face import FaceStage
    from face.imageio import to_network
    photo = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    with FaceStage(size=image_size, video=False) as stage:
        results = [stage(photo), stage(cv2.flip(photo, 1))]
    assert all(results), "the face stage found no face in the test photo"
    image = to_network(np.stack([r.frontal for r in results]))
    side = to_network(np.stack([r.side_map for r in results]))
    return torch.from_numpy(image), torch.from_numpy(side)


@pytest.mark.parametrize("kind,make", [
    ("uit_generator", lambda: TinyGenerator(8)),
    ("cgit_generator", lambda: TinyGenerator(8, n_classes=7)),
    ("classifier", lambda: TinyClassifier(8)),
])
def test_parity_random_and_real_looking_inputs(tmp_path, kind, make):
    module = seeded(make(), seed=3)
    path = export_onnx(module, kind, tmp_path / f"{kind}.onnx", image_size=64)
    for error in parity(module, kind, path, example_inputs(kind, 64, batch=3)).values():
        assert error <= PARITY
    if kind == "uit_generator":
        for error in parity(module, kind, path, _real_inputs(64)).values():
            assert error <= PARITY
    model = onnx.load(str(path))
    assert model.opset_import[0].version >= 17
    assert {p.key for p in model.metadata_props} >= {"exprada.kind", "exprada.classes", "exprada.image_size",
                                                     "exprada.width", "exprada.normalization", "exprada.config_sha256"}


def test_cgit_has_expression_input(tmp_path):
    path = export_onnx(seeded(TinyGenerator(8, n_classes=7)), "cgit_generator", tmp_path / "c.onnx", image_size=32)
    engine = engines.load(path)
    assert [s.name for s in engine.inputs] == ["image", "side_map", "expression"]
    assert engine.inputs[2].shape == (None, 7)


def test_merging_heads_keeps_outputs_and_removes_one_conv(tmp_path, tiny_generator):
    plain = export_onnx(tiny_generator, "uit_generator", tmp_path / "plain.onnx", image_size=32, merge_heads=False)
    merged = export_onnx(tiny_generator, "uit_generator", tmp_path / "merged.onnx", image_size=32)
    count = lambda p: sum(n.op_type == "Conv" for n in onnx.load(str(p)).graph.node)
    assert count(merged) == count(plain) - 1
    feeds = engines.load(plain).example_feeds(batch=2, fill=0.3)
    a, b = engines.load(plain).run(feeds), engines.load(merged).run(feeds)
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-6)


def test_merge_leaves_differently_shaped_convs_alone(tmp_path, tiny_classifier):
    path = export_onnx(tiny_classifier, "classifier", tmp_path / "c.onnx", image_size=32)
    model = onnx.load(str(path))
    assert merge_sibling_convs(model) == 0


def test_config_hash_changes_with_config(tmp_path, tiny_classifier):
    a = export_onnx(tiny_classifier, "classifier", tmp_path / "a.onnx", image_size=32, config={"width": 8})
    b = export_onnx(tiny_classifier, "classifier", tmp_path / "b.onnx", image_size=32, config={"width": 16})
    assert engines.load(a).metadata["exprada.config_sha256"] != engines.load(b).metadata["exprada.config_sha256"]


def test_unknown_kind_and_low_opset_are_refused(tmp_path, tiny_classifier):
    with pytest.raises(ValueError, match="unknown model kind"):
        export_onnx(tiny_classifier, "detector", tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="opset must be ≥ 17"):
        export_onnx(tiny_classifier, "classifier", tmp_path / "x.onnx", opset=13)


def test_padding_the_merged_head_keeps_outputs(tmp_path, tiny_generator):
    from engines.onnx_rewrite import pad_split_convs
    merged = export_onnx(tiny_generator, "uit_generator", tmp_path / "merged.onnx", image_size=32)
    model = onnx.load(str(merged))
    assert pad_split_convs(model, multiple=16) == 1
    assert pad_split_convs(model, multiple=16) == 0  # already a multiple: nothing more to do
    onnx.save(model, str(tmp_path / "padded.onnx"))
    head = next(n for n in model.graph.node if n.op_type == "Conv" and n.name.endswith("_merged"))
    weight = next(i for i in model.graph.initializer if i.name == head.input[1])
    assert weight.dims[0] == 16
    a, b = engines.load(merged), engines.load(tmp_path / "padded.onnx")
    feeds = a.example_feeds(batch=2, fill=-0.4)
    for name, value in a.run(feeds).items():
        np.testing.assert_allclose(value, b.run(feeds)[name], atol=1e-6)
