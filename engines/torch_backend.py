"""PyTorch backend: runs a `torch.export` program (.pt2) written by `python -m train export`.

The program carries the graph and weights, so the runtime never imports training code. On CUDA
the fast path is fp16/bf16 weights, channels_last, and either CUDA graphs (one captured graph per
batch size: the generator at batch 1 is launch-bound, so replaying a graph removes the per-kernel
CPU overhead) or `torch.compile` (fused kernels; mode "max-autotune-no-cudagraphs" plus our own
graphs would double up, so "reduce-overhead" is used, which graphs internally).

Loading a .pt2 can run code (torch.export.load unpickles parts of it, and retries a failed safe load
with full unpickling), so a program is loaded only when its bytes match the MODEL.pt2.sha256 export
wrote beside it, and torch then reads those checked bytes, never the file again.
"""
from __future__ import annotations

import json
from io import BytesIO
from pathlib import Path

import numpy as np
import torch

from engines.base import Engine, EngineFileError, TensorSpec, require_file, verify_digest
from engines.contract import PROGRAM_IO_FILE, PROGRAM_METADATA_FILE, digest_path

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
COMPILE_MODES = ("none", "graph", "compile")


class TorchEngine(Engine):
    backend = "torch"

    def __init__(self, path, device: str = "cpu", dtype: str = "float32", channels_last: bool | None = None,
                 compile: str = "none"):
        self.path = require_file(path, "torch.export program")
        if dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
        if compile not in COMPILE_MODES:
            raise ValueError(f"compile must be one of {COMPILE_MODES}, got {compile!r}")
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for, but this PyTorch sees no CUDA GPU")
        if compile == "graph" and self.device.type != "cuda":
            raise ValueError("compile='graph' (CUDA graphs) needs a CUDA device")
        self.dtype = DTYPES[dtype]
        # channels_last pays off with cuDNN's NHWC tensor-core kernels; on CPU it only adds copies.
        self.channels_last = self.device.type == "cuda" if channels_last is None else channels_last
        program_bytes = verify_digest(self.path)
        if program_bytes is None:
            name, digest = Path(self.path).name, digest_path(self.path).name
            raise EngineFileError(f"{self.path}: refused: a .pt2 program can run code while it loads, and it has no "
                                  f"{digest} beside it to show it is the one `python -m train export` wrote; "
                                  f"re-export it, or, for a program you made and trust, run "
                                  f"`sha256sum {name} > {digest}` in its folder")
        extra = {PROGRAM_METADATA_FILE: "", PROGRAM_IO_FILE: ""}
        try:
            program = torch.export.load(BytesIO(program_bytes), extra_files=extra)
        except Exception as error:  # zip/pickle/serde errors: all mean the file is not a usable program
            raise EngineFileError(f"torch.export program {self.path} could not be loaded: {error}") from error
        if not extra[PROGRAM_IO_FILE]:
            raise EngineFileError(f"{self.path} has no {PROGRAM_IO_FILE}; "
                                  "was it written by `python -m train export`?")
        self.metadata = json.loads(extra[PROGRAM_METADATA_FILE] or "{}")
        io = json.loads(extra[PROGRAM_IO_FILE])
        self.inputs = [TensorSpec(name, tuple(shape), np.dtype(np.float32)) for name, shape, _ in io["inputs"]]
        self._output_names = list(io["outputs"])
        module = program.module().to(self.device)
        if self.dtype != torch.float32:
            module = module.to(self.dtype)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.module = module
        self.compile = compile
        self._forward = torch.compile(module, mode="reduce-overhead", dynamic=False) if compile == "compile" else module
        self._graphs: dict[int, tuple] = {}
        probe = self._run(self.example_feeds(batch=1))
        self.outputs = [TensorSpec(name, (None, *probe[name].shape[1:]), np.dtype(np.float32))
                        for name in self._output_names]

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        tensor = torch.from_numpy(array).to(self.device, non_blocking=True).to(self.dtype)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    @torch.inference_mode()
    def _run(self, feeds):
        if self.compile == "graph":
            return self._run_graph(feeds)
        args = [self._to_device(feeds[spec.name]) for spec in self.inputs]
        outputs = self._forward(*args)
        return {name: out.float().cpu().numpy() for name, out in zip(self._output_names, outputs)}

    def _run_graph(self, feeds):
        batch = next(iter(feeds.values())).shape[0]
        if batch not in self._graphs:
            self._graphs[batch] = self._capture(feeds)
        graph, static_in, static_out = self._graphs[batch]
        for tensor, spec in zip(static_in, self.inputs):
            tensor.copy_(self._to_device(feeds[spec.name]))
        graph.replay()
        return {name: out.float().cpu().numpy() for name, out in zip(self._output_names, static_out)}

    def _capture(self, feeds):
        """Capture one CUDA graph for this batch size (static input/output buffers reused per call)."""
        static_in = [self._to_device(feeds[spec.name]).clone() for spec in self.inputs]
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # cuDNN picks its algorithms outside the capture
                self.module(*static_in)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = self.module(*static_in)
        return graph, static_in, static_out
