"""FP16 and INT8 versions of exported models, calibrated on frames through the runtime's face stage.

    python -m calibration --onnx MODEL.onnx --frames VIDEO|DIR --out MODEL.int8.onnx
    python -m calibration --onnx MODEL.onnx --precision fp16 --out MODEL.fp16.onnx
    python -m calibration.report --labelled DIR --generator fp32=G.onnx --generator int8=G.int8.onnx ...

frames.py collects calibration faces, feeds.py turns them into a model's inputs, quantize.py writes
Q/DQ INT8 and FP16 files, trt_calibrator.py is TensorRT 10's implicit-INT8 calibrator, report.py
compares precisions. Imports face/ and engines/, never train/.
"""
