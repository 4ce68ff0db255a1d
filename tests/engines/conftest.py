import pytest

from tiny_nets import TinyClassifier, TinyGenerator, seeded


@pytest.fixture(scope="session")
def tiny_generator():
    return seeded(TinyGenerator(width=8), seed=0)


@pytest.fixture(scope="session")
def tiny_classifier():
    return seeded(TinyClassifier(width=8), seed=1)


@pytest.fixture(scope="session")
def generator_onnx(tmp_path_factory, tiny_generator):
    from train.export import export_onnx
    return export_onnx(tiny_generator, "uit_generator", tmp_path_factory.mktemp("onnx") / "uit.onnx",
                       config={"width": 8, "image_size": 64}, image_size=64)


@pytest.fixture(scope="session")
def classifier_onnx(tmp_path_factory, tiny_classifier):
    from train.export import export_onnx
    return export_onnx(tiny_classifier, "classifier", tmp_path_factory.mktemp("onnx") / "classifier.onnx",
                       image_size=64)
