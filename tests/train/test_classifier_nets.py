"""The classifier backbones: outputs, input checks, ONNX-friendly pooling, pretrained weights by name."""
import pytest
import torch
import torch.nn.functional as F

from face.expressions import NUM_EXPRESSIONS
from train.checkpoint import load_model, save_checkpoint
from train.classifier_nets import AdaptivePool7, build_classifier, count_parameters, load_init_weights


@pytest.mark.parametrize("arch, embedding", [("small", 64), ("resnet18", 512), ("resnet50", 2048), ("vgg16", 4096)])
def test_every_backbone_returns_logits_and_embedding(arch, embedding):
    torch.manual_seed(0)
    net = build_classifier({"arch": arch, "image_size": 32, "width": 8}).eval()
    logits, emb = net(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert logits.shape == (2, NUM_EXPRESSIONS) and emb.shape == (2, embedding)
    assert torch.isfinite(logits).all() and torch.isfinite(emb).all()


def test_sizes_match_the_published_architectures():
    # VGG-16 with a 7-way fc8: 134.3 M; ResNet-50 without its 1000-way fc: 23.5 M; ResNet-18: 11.2 M.
    assert count_parameters(build_classifier({"arch": "vgg16"})) == 134_289_223
    assert count_parameters(build_classifier({"arch": "resnet50"})) == 23_508_032 + 2048 * 7 + 7
    assert count_parameters(build_classifier({"arch": "resnet18"})) == 11_176_512 + 512 * 7 + 7


def test_other_image_size_or_channel_count_is_a_clear_error():
    net = build_classifier({"arch": "small", "image_size": 64, "width": 4}).eval()
    with pytest.raises(ValueError, match=r"must be N×3×64×64 .* got \(1, 3, 32, 32\)"):
        net(torch.zeros(1, 3, 32, 32))
    with pytest.raises(ValueError, match=r"got \(1, 1, 64, 64\)"):
        net(torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="multiple of 32"):
        build_classifier({"arch": "small", "image_size": 48})
    with pytest.raises(ValueError, match="unknown classifier backbone 'vgg19'"):
        build_classifier({"arch": "vgg19"})


@pytest.mark.parametrize("grid", [1, 2, 4, 7, 9])
def test_matrix_pooling_equals_adaptive_average_pooling(grid):
    x = torch.randn(2, 5, grid, grid)
    assert torch.allclose(AdaptivePool7(grid)(x), F.adaptive_avg_pool2d(x, 7), atol=1e-6)


def test_init_weights_by_name_report_skip_and_shape_errors(tmp_path):
    torch.manual_seed(1)
    donor = build_classifier({"arch": "resnet18", "image_size": 32, "num_classes": 10}).eval()
    torch.save({"state_dict": {"module." + k: v for k, v in donor.state_dict().items()}}, tmp_path / "r18.pth")
    torch.manual_seed(2)
    net = build_classifier({"arch": "resnet18", "image_size": 32}).eval()
    with pytest.raises(ValueError, match=r"fc.weight: file \(10, 512\) vs model \(7, 512\).*--init-skip"):
        load_init_weights(net, tmp_path / "r18.pth")
    report = load_init_weights(net, tmp_path / "r18.pth", skip=["fc"])
    assert report["skipped"] == ["fc.bias", "fc.weight"] and report["missing"] == ["fc.bias", "fc.weight"]
    assert len(report["matched"]) == len(donor.state_dict()) - 2 and report["unused"] == []
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(net(x)[1], donor(x)[1])  # same features: every backbone tensor was loaded
    torch.save({"conv9.weight": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="no tensor name in common"):
        load_init_weights(net, tmp_path / "foreign.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a loadable weights file"):
        load_init_weights(net, tmp_path / "junk.pt")


def test_vgg_loads_torchvision_style_names_in_layer_order(tmp_path):
    torch.manual_seed(3)
    donor = build_classifier({"arch": "vgg16", "image_size": 32}).eval()
    renamed, conv_index = {}, 0
    for i, name in enumerate(donor.conv_names):  # torchvision: features.0, .2, .5, ... / classifier.0, .3, .6
        conv_index = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28][i]
        renamed[f"features.{conv_index}.weight"] = getattr(donor, name).weight
        renamed[f"features.{conv_index}.bias"] = getattr(donor, name).bias
    for index, name in zip((0, 3, 6), ("fc6", "fc7", "fc8")):
        renamed[f"classifier.{index}.weight"] = getattr(donor, name).weight
        renamed[f"classifier.{index}.bias"] = getattr(donor, name).bias
    torch.save({k: v.detach().clone() for k, v in renamed.items()}, tmp_path / "vgg_tv.pth")
    del renamed
    net = build_classifier({"arch": "vgg16", "image_size": 32}).eval()
    report = load_init_weights(net, tmp_path / "vgg_tv.pth")
    assert len(report["matched"]) == 32 and report["missing"] == []
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(net(x)[0], donor(x)[0])


def test_a_classifier_checkpoint_rebuilds_through_load_model(tmp_path):
    config = {"arch": "small", "image_size": 32, "width": 4, "num_classes": 7}
    net = build_classifier(config).eval()
    save_checkpoint(tmp_path / "c.pt", kind="classifier", config=config, models={"classifier": net})
    loaded, saved_config, kind = load_model(tmp_path / "c.pt")
    x = torch.rand(2, 3, 32, 32)
    assert kind == "classifier" and saved_config == config and torch.equal(loaded(x)[0], net(x)[0])


def test_the_vgg_pool_and_the_small_backbone_export_to_onnx_with_parity(tmp_path):
    """The ONNX exporter refuses 4×4 → 7×7 adaptive pooling (VGG at 128²); the matrix form goes through."""
    ort = pytest.importorskip("onnxruntime")
    from train.export import example_inputs, export_onnx, parity

    pool = AdaptivePool7(4).eval()
    x = torch.randn(2, 8, 4, 4)
    torch.onnx.export(pool, (x,), str(tmp_path / "pool.onnx"), dynamo=False, input_names=["x"], output_names=["y"])
    y = ort.InferenceSession(str(tmp_path / "pool.onnx"), providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
    assert abs(y - F.adaptive_avg_pool2d(x, 7).numpy()).max() < 1e-5
    config = {"arch": "small", "image_size": 64, "width": 4}
    net = build_classifier(config).eval()
    path = export_onnx(net, "classifier", tmp_path / "small.onnx", config=config, image_size=64)
    errors = parity(net, "classifier", path, example_inputs("classifier", 64, batch=2))
    assert max(errors.values()) < 1e-4, errors
