"""`python -m train export`: checkpoint → ONNX (.onnx) or torch.export program (.pt2), the hand-off
from training to the engines.

It rebuilds the network from a checkpoint, wraps it so its inputs and outputs carry the contract's
names (engines/contract.py), and writes the artefact with the `exprada.*` metadata the runtime reads
back, with its sha256 beside it (MODEL.pt2.sha256, MODEL.onnx.sha256: copy both files). It lives in
train/, not engines/, so the runners never import training code.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import nn

from engines.contract import (CGIT_GENERATOR, CLASSES, CLASSIFIER, DEFAULT_IMAGE_SIZE,
                              PROGRAM_IO_FILE, PROGRAM_METADATA_FILE, UIT_GENERATOR, ModelInfo, check_kind,
                              io_names, write_digest)
from engines.onnx_rewrite import merge_sibling_convs

DEFAULT_OPSET = 17


class UITGeneratorIO(nn.Module):
    """(image, side_map) → (translated, side_map_out): the generator takes them stacked, 6 channels."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image, side_map):
        return tuple(self.generator(torch.cat([image, side_map], dim=1)))


class CGITGeneratorIO(nn.Module):
    """As UIT, plus the one-hot `expression` [N,7] that conditions the bottleneck."""

    def __init__(self, generator: nn.Module):
        super().__init__()
        self.generator = generator

    def forward(self, image, side_map, expression):
        return tuple(self.generator(torch.cat([image, side_map], dim=1), expression_onehot=expression))


class ClassifierIO(nn.Module):
    def __init__(self, classifier: nn.Module):
        super().__init__()
        self.classifier = classifier

    def forward(self, image):
        return tuple(self.classifier(image))


WRAPPERS = {UIT_GENERATOR: UITGeneratorIO, CGIT_GENERATOR: CGITGeneratorIO, CLASSIFIER: ClassifierIO}


def wrap(module: nn.Module, kind: str) -> nn.Module:
    return WRAPPERS[check_kind(kind)](module).eval()


def example_inputs(kind: str, image_size: int, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """Random inputs in the network range [-1, 1] (and a valid one-hot for CGIT)."""
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, image_size, image_size, generator=generator) * 2 - 1
    if kind == CLASSIFIER:
        return (image,)
    side = torch.rand(batch, 3, image_size, image_size, generator=generator) * 2 - 1
    if kind == UIT_GENERATOR:
        return image, side
    onehot = torch.nn.functional.one_hot(torch.arange(batch) % len(CLASSES), len(CLASSES)).float()
    return image, side, onehot


def config_sha256(config) -> str:
    """Hash of the training config as canonical JSON: ties an engine to the run that made it."""
    return hashlib.sha256(json.dumps(config or {}, sort_keys=True, default=str).encode()).hexdigest()


def infer_width(module: nn.Module) -> int:
    """Base channel count: the first convolution's output channels (table 1's 64 at full width)."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            return int(layer.out_channels)
    raise ValueError("network has no Conv2d layer to read its width from")


def build_metadata(kind: str, config: dict | None, image_size: int, width: int, classes=CLASSES) -> dict:
    """The contract's `exprada.*` metadata of an exported model (engines/contract.py)."""
    return ModelInfo(check_kind(kind), tuple(classes), int(image_size), int(width),
                     config_sha256=config_sha256(config)).to_metadata()


def export_onnx(module: nn.Module, kind: str, out, *, config: dict | None = None,
                image_size: int = DEFAULT_IMAGE_SIZE, width: int | None = None, classes=CLASSES,
                opset: int = DEFAULT_OPSET, merge_heads: bool = True) -> Path:
    """Write `module` as ONNX: dynamic batch, fixed S×S, contract names, `exprada.*` metadata.

    merge_heads: the generator's two 7×7 heads become one convolution + Split (same outputs, one
    im2col; see engines/onnx_rewrite.py).
    """
    if opset < 17:
        raise ValueError(f"opset must be ≥ 17 (LayerNorm/InstanceNorm fusions, Q/DQ per-channel), got {opset}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    inputs, outputs = io_names(kind)
    wrapper = wrap(module, kind)
    with torch.no_grad(), warnings.catch_warnings():
        # The TorchScript exporter is deprecated but needs no onnxscript; its instance-norm warning is
        # about training mode, irrelevant here (instance norm always uses the input's statistics).
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, example_inputs(kind, image_size), str(out), dynamo=False,
                          input_names=inputs, output_names=outputs, opset_version=opset,
                          dynamic_axes={name: {0: "batch"} for name in inputs + outputs},
                          do_constant_folding=True)
    model = onnx.load(str(out))
    if merge_heads:
        merge_sibling_convs(model)
    metadata = build_metadata(kind, config, image_size, width or infer_width(module), classes)
    del model.metadata_props[:]
    for key, value in metadata.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "exprada-train-export"
    onnx.checker.check_model(model)
    onnx.save(model, str(out))
    write_digest(out)
    return out


def export_program(module: nn.Module, kind: str, out, *, config: dict | None = None,
                   image_size: int = DEFAULT_IMAGE_SIZE, width: int | None = None, classes=CLASSES,
                   max_batch: int = 256) -> Path:
    """Write a torch.export program (.pt2) for the PyTorch backend; the runtime needs no train/ code."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    inputs, outputs = io_names(kind)
    wrapper = wrap(module, kind)
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    args = example_inputs(kind, image_size, batch=2)
    with torch.no_grad():
        program = torch.export.export(wrapper, args, dynamic_shapes=tuple({0: batch} for _ in args))
    metadata = build_metadata(kind, config, image_size, width or infer_width(module), classes)
    specs = {"inputs": [[name, [None, *a.shape[1:]], "float32"] for name, a in zip(inputs, args)],
             "outputs": outputs}
    torch.export.save(program, str(out), extra_files={PROGRAM_METADATA_FILE: json.dumps(metadata),
                                                      PROGRAM_IO_FILE: json.dumps(specs)})
    write_digest(out)   # the torch backend loads a program only when it matches this
    return out


def load_checkpoint_model(checkpoint, name: str | None = None, *, expect: str | None = None, needed_by: str = ""):
    """(module, kind, config, image_size, width) from a training checkpoint via train.checkpoint
    (`expect`, `needed_by`: train.checkpoint.load_model's refusal of another kind)."""
    from train.checkpoint import load_model

    # a checkpoint's kind is its model's kind
    module, config, kind = load_model(checkpoint, name=name, expect=expect, needed_by=needed_by)
    if kind != CLASSIFIER and name not in (None, "G_ts", "G_ts_ema", "G_st"):
        raise ValueError(f"{checkpoint}: only generators (G_ts, G_ts_ema, G_st) are exported, got {name!r}")
    image_size = int(config.get("image_size", DEFAULT_IMAGE_SIZE))
    width = int(config.get("width") or infer_width(module))
    return module.float().eval(), kind, config, image_size, width


def export_checkpoint(checkpoint, out, *, name: str | None = None, opset: int = DEFAULT_OPSET) -> Path:
    """.onnx → ONNX, .pt2 → torch.export program."""
    module, kind, config, image_size, width = load_checkpoint_model(checkpoint, name)
    classes = config.get("classes") or CLASSES
    if str(out).endswith(".pt2"):
        return export_program(module, kind, out, config=config, image_size=image_size, width=width, classes=classes)
    return export_onnx(module, kind, out, config=config, image_size=image_size, width=width,
                       classes=classes, opset=opset)


def parity(module: nn.Module, kind: str, path, inputs: tuple[torch.Tensor, ...]) -> dict[str, float]:
    """Max |exported − PyTorch| per output, relative to the PyTorch output's range: an .onnx file run
    by ONNX Runtime, a .pt2 program by the runtime's own torch engine (as the car would load it)."""
    import engines

    names, outputs = io_names(kind)
    with torch.no_grad():
        expected = [t.numpy() for t in wrap(module, kind)(*inputs)]
    engine = engines.load(path, "torch" if str(path).endswith(".pt2") else "onnxruntime")
    produced = engine.run({n: t.numpy() for n, t in zip(names, inputs)})
    got = [produced[name] for name in outputs]
    result = {}
    for name, want, have in zip(outputs, expected, got):
        span = float(np.ptp(want)) or 1.0
        result[name] = float(np.abs(want - have).max()) / span
    return result


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m train export", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="a checkpoint file or its run folder")
    p.add_argument("--out", required=True, help="MODEL.onnx or MODEL.pt2")
    p.add_argument("--name", help="network in an ExprADA checkpoint (default G_ts, or its weight average "
                                  "G_ts_ema when the run kept one)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET)
    args = p.parse_args(argv)
    if Path(args.out).suffix not in (".onnx", ".pt2") or Path(args.out).is_dir():
        raise SystemExit(f"error: --out {args.out}: give a file name ending in .onnx or .pt2")
    try:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        out = export_checkpoint(args.checkpoint, args.out, name=args.name, opset=args.opset)
    except OSError as error:   # (a checkpoint that cannot be read is a CheckpointError, said by train/__main__)
        raise SystemExit(f"error: cannot write {args.out}: {error.strerror or error}") from None
    except ValueError as error:   # e.g. --name of a network that is no generator
        raise SystemExit(f"error: {error}") from None
    info = ModelInfo.of(out)   # what the artefact states, read back
    result = {"out": str(out), "checkpoint": str(args.checkpoint), "kind": info.kind, "image_size": info.image_size,
              "width": info.width}
    module, kind, _, size, _ = load_checkpoint_model(args.checkpoint, args.name)
    result["parity_rel_max"] = parity(module, kind, out, example_inputs(kind, size, batch=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
