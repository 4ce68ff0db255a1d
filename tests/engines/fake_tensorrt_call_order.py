"""A recording stand-in for `tensorrt` and `pycuda.driver`, ONLY to check the order of API calls.

It computes nothing real: the "engine" copies its first input to every output (so the test can
see data go through our buffers), every call is appended to `calls`. It says nothing about
whether real TensorRT accepts a model; the real-TensorRT tests (skipped without it) do that.
"""
import json
import types

import numpy as np
import onnx

calls: list[tuple] = []
device_memory: dict[int, np.ndarray] = {}


def record(*entry):
    calls.append(entry)


def make_tensorrt(version="10.9.0", gpu_builds_fail=False):
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.__fake__ = "fake_tensorrt_call_order"

    class Logger:
        WARNING = "WARNING"

        def __init__(self, severity):
            self.severity = severity

    class _Enum(types.SimpleNamespace):
        pass

    trt.Logger = Logger
    trt.NetworkDefinitionCreationFlag = _Enum(STRONGLY_TYPED=0)
    trt.MemoryPoolType = _Enum(WORKSPACE="WORKSPACE")
    trt.BuilderFlag = _Enum(FP16="FP16", INT8="INT8")
    trt.TensorIOMode = _Enum(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.nptype = lambda dtype: np.float32

    class Network:
        def __init__(self, flags):
            self.flags, self.io = flags, None

    class OnnxParser:
        def __init__(self, network, logger):
            self.network = network
            self.num_errors = 0

        def parse_from_file(self, path):
            record("parse_from_file", path)
            model = onnx.load(path)
            dims = lambda v: [d.dim_value if d.HasField("dim_value") else -1 for d in v.type.tensor_type.shape.dim]
            self.network.io = {"inputs": [[v.name, dims(v)] for v in model.graph.input],
                               "outputs": [[v.name, dims(v)] for v in model.graph.output]}
            return True

    class TimingCache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return b"timing" + self.data[:0]

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, low, opt, high):
            record("profile.set_shape", name, tuple(low), tuple(opt), tuple(high))
            self.shapes[name] = (tuple(low), tuple(opt), tuple(high))

    class Config:
        def __init__(self):
            self.profiles, self.flags, self.cache = [], [], None

        def set_memory_pool_limit(self, pool, size):
            record("set_memory_pool_limit", pool, size)

        def set_flag(self, flag):
            record("set_flag", flag)
            self.flags.append(flag)

        def add_optimization_profile(self, profile):
            record("add_optimization_profile")
            self.profiles.append(profile)

        def create_timing_cache(self, data):
            record("create_timing_cache", bytes(data))
            return TimingCache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            record("set_timing_cache", ignore_mismatch)
            self.cache = cache
            return True

        def get_timing_cache(self):
            record("get_timing_cache")
            return self.cache

        def set_calibration_profile(self, profile):
            record("set_calibration_profile")

    class Builder:
        def __init__(self, logger):
            record("Builder")

        def create_network(self, flags):
            record("create_network", flags)
            return Network(flags)

        def create_builder_config(self):
            record("create_builder_config")
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            record("build_serialized_network", tuple(config.flags))
            if gpu_builds_fail:
                return None
            profile = config.profiles[0].shapes
            return b"FAKEPLAN" + json.dumps({"io": network.io, "profile": {k: v for k, v in profile.items()}}).encode()

    class Engine:
        def __init__(self, plan):
            spec = json.loads(plan[len(b"FAKEPLAN"):])
            self.io = [(n, s, "INPUT") for n, s in spec["io"]["inputs"]] + \
                      [(n, s, "OUTPUT") for n, s in spec["io"]["outputs"]]
            self.profile = spec["profile"]
            self.num_io_tensors = len(self.io)

        def get_tensor_name(self, index):
            return self.io[index][0]

        def _find(self, name):
            return next(t for t in self.io if t[0] == name)

        def get_tensor_shape(self, name):
            return self._find(name)[1]

        def get_tensor_dtype(self, name):
            return "float32"

        def get_tensor_mode(self, name):
            return self._find(name)[2]

        def get_tensor_profile_shape(self, name, profile):
            return self.profile[name]

        def create_execution_context(self):
            record("create_execution_context")
            return Context(self)

    class Context:
        def __init__(self, engine):
            self.engine, self.shapes, self.addresses = engine, {}, {}

        def set_input_shape(self, name, shape):
            record("set_input_shape", name, tuple(shape))
            self.shapes[name] = tuple(shape)
            return True

        def get_tensor_shape(self, name):
            batch = next(iter(self.shapes.values()))[0]
            return [batch if d == -1 else d for d in self.engine.get_tensor_shape(name)]

        def set_tensor_address(self, name, address):
            record("set_tensor_address", name)
            self.addresses[name] = address

        def execute_async_v3(self, stream_handle):
            record("execute_async_v3", stream_handle)
            first = next(n for n, _, mode in self.engine.io if mode == "INPUT")
            source = device_memory[self.addresses[first]]
            for name, _, mode in self.engine.io:
                if mode == "OUTPUT":
                    target = device_memory[self.addresses[name]]
                    target[:source.size] = source  # "inference": output = first input
            return True

    class Runtime:
        def __init__(self, logger):
            record("Runtime")

        def deserialize_cuda_engine(self, plan):
            record("deserialize_cuda_engine")
            return Engine(plan) if plan.startswith(b"FAKEPLAN") else None

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt


def make_pycuda_driver(gpu_name="Fake GPU H100", capability=(9, 0)):
    driver = types.ModuleType("pycuda.driver")
    counter = iter(range(0x1000, 1 << 40, 0x1000))

    class Allocation:
        def __init__(self, nbytes):
            self.address = next(counter)
            self.nbytes = nbytes
            device_memory[self.address] = np.zeros(nbytes // 4, np.float32)
            record("mem_alloc", nbytes)

        def __int__(self):
            return self.address

        def free(self):
            record("free", self.nbytes)
            device_memory.pop(self.address, None)

    class PrimaryContext:
        def push(self):
            record("ctx.push")

        def pop(self):
            record("ctx.pop")

    class Device:
        def __init__(self, ordinal):
            self.ordinal = ordinal

        def name(self):
            return gpu_name

        def compute_capability(self):
            return capability

        def retain_primary_context(self):
            record("retain_primary_context")
            return PrimaryContext()

    class Stream:
        handle = 0xABC

        def synchronize(self):
            record("stream.synchronize")

    def memcpy_htod_async(dst, src, stream):
        record("memcpy_htod_async")
        device_memory[int(dst)][:src.size] = np.asarray(src, np.float32).ravel()

    def memcpy_dtoh_async(dst, src, stream):
        record("memcpy_dtoh_async")
        dst.reshape(-1)[...] = device_memory[int(src)][:dst.size]

    driver.init = lambda: record("cuda.init")
    driver.Device, driver.Stream, driver.mem_alloc = Device, Stream, Allocation
    driver.pagelocked_empty = lambda count, dtype: np.empty(count, dtype)
    driver.memcpy_htod_async, driver.memcpy_dtoh_async = memcpy_htod_async, memcpy_dtoh_async
    return driver
