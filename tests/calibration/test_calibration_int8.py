"""INT8 Q/DQ and FP16: the files are what each runtime needs, and their outputs stay close to FP32."""
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

import engines
from calibration.feeds import model_inputs
from calibration.frames import collect, from_arrays
from calibration.quantize import batched_feeds, convert_fp16, quantize_int8


@pytest.fixture(scope="module")
def calib(face_frames):
    return collect(face_frames, size=128, limit=8, progress=False)


def _feeds(path, calib):
    return batched_feeds(model_inputs(engines.load(path), calib), batch=4)


def test_frames_go_through_the_face_stage_and_bad_ones_are_counted(calib):
    assert len(calib) == 8
    assert calib.images.shape == (8, 3, 128, 128) and calib.images.dtype == np.float32
    assert -1.0 <= calib.images.min() and calib.images.max() <= 1.0
    assert calib.side_maps.shape == (8, 3, 128, 128)
    assert calib.side_maps.max() > calib.side_maps.min()  # landmarks drawn, not a blank map
    assert calib.skipped.get("unreadable") == 1


def test_folder_without_faces_is_a_clear_error(tmp_path):
    import cv2
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((200, 200), 128, np.uint8))
    with pytest.raises(ValueError, match="no face found in 1 frames"):
        collect(tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="missing_dir"):
        collect(tmp_path / "missing_dir", progress=False)


def _optimized_ops(path, tmp_path):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return [n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")).graph.node]


@pytest.mark.parametrize("method", ["minmax", "entropy", "percentile"])
def test_cpu_int8_runs_every_conv_in_int8_and_stays_close(tmp_path, generator_128, calib, method):
    out = quantize_int8(generator_128, tmp_path / f"g.{method}.onnx", _feeds(generator_128, calib), method=method)
    ops = _optimized_ops(out, tmp_path)
    # The finding behind the CPU target: every convolution (incl. the residual ones and the heads) must
    # become QLinearConv; a float Conv left between DQ and Q is where plain Q/DQ lost its speed-up.
    assert "Conv" not in ops and ops.count("QLinearConv") >= 10
    assert "QLinearAdd" in ops  # residual additions in int8 too
    fp32, int8 = engines.load(generator_128), engines.load(out)
    assert int8.metadata["exprada.kind"] == "uit_generator"
    assert int8.metadata["exprada.precision"] == "int8"
    assert json.loads(int8.metadata["exprada.quantization"])["method"] == method
    feeds = {"image": calib.images[:4], "side_map": calib.side_maps[:4]}
    a, b = fp32.run(feeds), engines.check_finite(int8.run(feeds))
    for name in a:
        assert np.abs(a[name] - b[name]).mean() < 0.05, name  # tanh outputs span [-1, 1]


def test_histogram_methods_take_a_short_last_batch(tmp_path, generator_128, calib):
    feeds = batched_feeds({"image": calib.images[:5], "side_map": calib.side_maps[:5]}, batch=4)  # 4 + 1
    out = quantize_int8(generator_128, tmp_path / "g.onnx", feeds, method="percentile")
    assert engines.load(out).metadata["exprada.precision"] == "int8"


def _initializer(model, name):
    return numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == name))


def test_weights_are_symmetric_per_channel_and_tensorrt_target_is_symmetric_int8(tmp_path, generator_128, calib):
    out = quantize_int8(generator_128, tmp_path / "g.trt.onnx", _feeds(generator_128, calib), target="tensorrt")
    model = onnx.load(str(out))
    dequant = [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    init_names = {i.name for i in model.graph.initializer}
    weights = [n for n in dequant if n.input[0] in init_names and _initializer(model, n.input[0]).ndim == 4]
    assert weights, "no quantized convolution weights"
    for node in weights:
        weight = _initializer(model, node.input[0])
        scale, zero = _initializer(model, node.input[1]), _initializer(model, node.input[2])
        assert weight.dtype == np.int8 and scale.shape == (weight.shape[0],)  # one scale per output channel
        assert not zero.any()  # symmetric
    activations = [n for n in dequant if n.input[0] not in init_names]
    for node in activations:
        zero = _initializer(model, node.input[2])
        assert zero.dtype == np.int8 and not zero.any()  # TensorRT: int8, zero point 0
    producers = {n.output[0]: n for n in dequant}
    norm_scales = [producers[n.input[1]] for n in model.graph.node
                   if n.op_type == "InstanceNormalization" and n.input[1] in producers]
    assert norm_scales and all(_initializer(model, d.input[1]).shape == _initializer(model, d.input[0]).shape
                               for d in norm_scales)  # one scale per channel, not one for all
    # biases stay float for TensorRT to fuse
    assert not any(_initializer(model, n.input[0]).dtype == np.int32 for n in dequant if n.input[0] in init_names)


def test_classifier_calibrates_on_translations(tmp_path, generator_128, classifier_128, calib):
    generator = engines.load(generator_128)
    inputs = model_inputs(engines.load(classifier_128), calib, generator=generator)
    expected = generator.run({"image": calib.images[:2], "side_map": calib.side_maps[:2]})["translated"]
    np.testing.assert_allclose(inputs["image"][:2], expected, atol=1e-6)
    out = quantize_int8(classifier_128, tmp_path / "c.int8.onnx", batched_feeds(inputs, 4))
    logits = engines.load(out).run({"image": inputs["image"]})["logits"]
    assert logits.shape == (len(calib), 7)


def test_cgit_generator_inputs_cycle_through_its_classes(tmp_path, calib):
    from train.export import export_onnx
    from tiny_nets import TinyGenerator, seeded
    cgit = export_onnx(seeded(TinyGenerator(width=4, n_classes=7)), "cgit_generator", tmp_path / "cgit.onnx")
    inputs = model_inputs(engines.load(cgit), calib)
    assert set(inputs) == {"image", "side_map", "expression"}
    np.testing.assert_array_equal(inputs["expression"].argmax(1), np.arange(len(calib)) % 7)
    assert inputs["expression"].sum(1).tolist() == [1.0] * len(calib)


def test_fp16_keeps_float32_io_and_close_outputs(tmp_path, generator_128, calib):
    out = convert_fp16(generator_128, tmp_path / "g.fp16.onnx")
    half, full = engines.load(out), engines.load(generator_128)
    assert [(s.name, s.dtype) for s in half.inputs] == [(s.name, s.dtype) for s in full.inputs]
    assert all(s.dtype == np.float32 for s in half.outputs)
    assert half.metadata["exprada.precision"] == "fp16"
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in onnx.load(str(out)).graph.initializer)
    feeds = {"image": calib.images[:2], "side_map": calib.side_maps[:2]}
    a, b = full.run(feeds), half.run(feeds)
    for name in a:
        assert np.abs(a[name] - b[name]).max() < 0.02


def test_bad_inputs_to_quantization(tmp_path, generator_128):
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"garbage" * 100)
    with pytest.raises(ValueError, match="corrupt.onnx is corrupt or invalid"):
        convert_fp16(corrupt, tmp_path / "x.onnx")
    with pytest.raises(FileNotFoundError, match="absent.onnx"):
        quantize_int8(tmp_path / "absent.onnx", tmp_path / "x.onnx", [{}])
    with pytest.raises(ValueError, match="calibration method 'kl'"):
        quantize_int8(generator_128, tmp_path / "x.onnx", [{}], method="kl")
    with pytest.raises(ValueError, match="calibration set is empty"):
        batched_feeds({"image": np.zeros((0, 3, 128, 128), np.float32)})
    with pytest.raises(ValueError, match="expected images and side maps"):
        from_arrays(np.zeros((2, 128, 128, 3), np.uint8), np.zeros((2, 64, 64, 3), np.uint8))


def test_entropy_is_not_minmax_and_inputs_keep_their_contract_range(tmp_path, generator_128, calib):
    from onnxruntime.quantization.calibrate import load_tensors_data
    from calibration.quantize import calibrate_ranges
    feeds = _feeds(generator_128, calib)[:1]
    ranges = {}
    for method in ("minmax", "entropy"):
        (tmp_path / method).mkdir()
        ranges[method] = load_tensors_data(calibrate_ranges(generator_128, feeds, method, 99.99, False, tmp_path / method))
    width = lambda r, k: float(np.ptp([float(np.asarray(v).reshape(-1)[0]) for v in r[k].range_value]))
    inner = [k for k in ranges["minmax"].data if k not in ("image", "side_map")]
    assert any(width(ranges["entropy"], k) < 0.9 * width(ranges["minmax"], k) for k in inner)  # KL really clips
    for method, r in ranges.items():
        for name in ("image", "side_map"):  # never "calibrated" away: the side map's lines are sparse
            assert [float(np.asarray(v).reshape(-1)[0]) for v in r[name].range_value] == [-1.0, 1.0], method
