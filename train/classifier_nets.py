"""Expression classifiers, in plain PyTorch: forward(x) -> (logits N×7, embedding N×D).

Backbones:
- vgg16: VGG-Face's architecture (13 3×3 convolutions in 5 blocks, fc6/fc7 of 4096, fc8 the
  classes), layers named like VGG-Face's (conv1_1 … conv5_3, fc6, fc7, fc8) so converted VGG-Face
  weights load by name. An adaptive average pool to 7×7 before fc6 (as torchvision's VGG) keeps
  fc6 at VGG-Face's 25088 inputs for any image size. Embedding: fc7's output.
- resnet50 / resnet18: He et al.'s bottleneck / basic-block ResNets with torchvision's tensor
  names (conv1, bn1, layer1.0.conv1, …, fc), so ImageNet weights saved from torchvision load.
  Embedding: the pooled features (2048 / 512).
- small: a narrow CNN for the car's CPU (4 stages of two 3×3 convolutions, base width `width`).
  Embedding: the pooled features (8·width).

Input: N×3×S×S float32 in [-1, 1] (BGR, `x/127.5-1`), S = config["image_size"].
"""
import re
from abc import ABC, abstractmethod

import torch
import torch.nn.functional as F
from torch import nn

from face.expressions import NUM_EXPRESSIONS

ARCHS = ("vgg16", "resnet50", "resnet18", "small")
MIN_SIZE = 32  # five halvings: every backbone needs at least 32×32


class ClassifierBase(nn.Module, ABC):
    """Checks the input (clear error for another size or channel count) and returns (logits, embedding)."""

    def __init__(self, image_size: int, num_classes: int):
        super().__init__()
        if image_size < MIN_SIZE or image_size % 32:
            raise ValueError(f"classifier image size must be a multiple of 32 and >= {MIN_SIZE}, got {image_size}")
        self.image_size, self.num_classes = int(image_size), int(num_classes)

    def check_input(self, x: torch.Tensor) -> None:
        expected = (3, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"classifier input must be N×{expected[0]}×{expected[1]}×{expected[2]} (BGR in [-1, 1], "
                             f"the size it was trained at), got {tuple(x.shape)}")

    @abstractmethod
    def features(self, x):
        """Image batch → embedding N×D."""

    @abstractmethod
    def head(self, embedding):
        """Embedding → class logits N×7."""

    def forward(self, x):
        self.check_input(x)
        embedding = self.features(x)
        return self.head(embedding), embedding


# ---- VGG-Face (VGG-16) ------------------------------------------------------------------------

VGG_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def adaptive_pool_matrix(size_in: int, size_out: int) -> torch.Tensor:
    """size_out×size_in averaging matrix of adaptive average pooling along one axis (PyTorch's bins)."""
    matrix = torch.zeros(size_out, size_in)
    for i in range(size_out):
        start, end = (i * size_in) // size_out, -(-((i + 1) * size_in) // size_out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


class AdaptivePool7(nn.Module):
    """AdaptiveAvgPool2d((7, 7)) for a fixed input grid, as two matrix products: the same numbers,
    and it exports to ONNX for any grid (the ONNX exporter refuses adaptive pools whose output size
    does not divide the input, e.g. 4×4 → 7×7 at 128²). Not in the state_dict (VGG-Face has none)."""

    def __init__(self, grid: int, out: int = 7):
        super().__init__()
        self.register_buffer("matrix", adaptive_pool_matrix(grid, out), persistent=False)

    def forward(self, x):
        return self.matrix @ x @ self.matrix.t()


class VGG16(ClassifierBase):
    def __init__(self, image_size: int = 128, num_classes: int = NUM_EXPRESSIONS, dropout: float = 0.5):
        super().__init__(image_size, num_classes)
        self.conv_names, self.pool_after = [], set()  # a 2×2 max pool closes each block
        c_in = 3
        for block, (c_out, count) in enumerate(VGG_BLOCKS, start=1):
            for i in range(1, count + 1):
                name = f"conv{block}_{i}"
                setattr(self, name, nn.Conv2d(c_in, c_out, 3, 1, 1))
                self.conv_names.append(name)
                c_in = c_out
            self.pool_after.add(name)
        self.pool = AdaptivePool7(image_size // 32)
        self.fc6 = nn.Linear(512 * 7 * 7, 4096)
        self.fc7 = nn.Linear(4096, 4096)
        self.fc8 = nn.Linear(4096, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.embedding_dim = 4096

    def features(self, x):
        for name in self.conv_names:
            x = F.relu(getattr(self, name)(x), inplace=True)
            if name in self.pool_after:
                x = F.max_pool2d(x, 2, 2)
        x = self.pool(x).flatten(1)
        x = self.dropout(F.relu(self.fc6(x), inplace=True))
        return F.relu(self.fc7(x))

    def head(self, embedding):
        return self.fc8(self.dropout(embedding))


# ---- ResNets (torchvision tensor names) ---------------------------------------------------------

class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, width: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.downsample = _shortcut(c_in, width, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = self.bn2(self.conv2(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x), inplace=True)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in: int, width: int, stride: int = 1):
        super().__init__()
        c_out = width * self.expansion
        self.conv1 = nn.Conv2d(c_in, width, 1, 1, 0, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)  # stride on the 3×3 (ResNet v1.5)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, c_out, 1, 1, 0, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.downsample = _shortcut(c_in, c_out, stride)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)
        out = F.relu(self.bn2(self.conv2(out)), inplace=True)
        out = self.bn3(self.conv3(out))
        return F.relu(out + (self.downsample(x) if self.downsample is not None else x), inplace=True)


def _shortcut(c_in: int, c_out: int, stride: int):
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class ResNet(ClassifierBase):
    def __init__(self, block, layers, image_size: int = 128, num_classes: int = NUM_EXPRESSIONS, dropout: float = 0.0):
        super().__init__(image_size, num_classes)
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        c_in = 64
        for i, (count, width) in enumerate(zip(layers, (64, 128, 256, 512)), start=1):
            blocks = []
            for j in range(count):
                blocks.append(block(c_in, width, 2 if (j == 0 and i > 1) else 1))
                c_in = width * block.expansion
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
        self.fc = nn.Linear(c_in, num_classes)
        self.dropout = nn.Dropout(dropout)
        self.embedding_dim = c_in
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for m in self.modules():  # zero-init the last BN of each residual branch: blocks start as identity
            if isinstance(m, (BasicBlock, Bottleneck)):
                nn.init.zeros_((m.bn3 if isinstance(m, Bottleneck) else m.bn2).weight)

    def features(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x)), inplace=True), 3, 2, 1)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return x.mean(dim=(2, 3))

    def head(self, embedding):
        return self.fc(self.dropout(embedding))


# ---- small: a narrow CNN for the car's CPU -------------------------------------------------------

def _conv_bn_relu(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class SmallCNN(ClassifierBase):
    def __init__(self, image_size: int = 128, num_classes: int = NUM_EXPRESSIONS, width: int = 16, dropout: float = 0.3):
        super().__init__(image_size, num_classes)
        if width < 1:
            raise ValueError(f"small classifier width must be >= 1, got {width}")
        w = int(width)
        self.stem = _conv_bn_relu(3, w, 2)
        stages, c_in = [], w
        for c_out in (w, 2 * w, 4 * w, 8 * w):
            stages.append(nn.Sequential(_conv_bn_relu(c_in, c_out, 2), _conv_bn_relu(c_out, c_out, 1)))
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(c_in, num_classes)
        self.embedding_dim = c_in

    def features(self, x):
        return self.stages(self.stem(x)).mean(dim=(2, 3))

    def head(self, embedding):
        return self.fc(self.dropout(embedding))


# ---- from a config ------------------------------------------------------------------------------

def build_classifier(config: dict) -> ClassifierBase:
    """The classifier a config describes: arch, image_size, num_classes (7), width (small), dropout."""
    arch = config.get("arch")
    size = int(config.get("image_size", 128))
    classes = int(config.get("num_classes", NUM_EXPRESSIONS))
    dropout = config.get("dropout")
    if arch == "vgg16":
        return VGG16(size, classes, 0.5 if dropout is None else float(dropout))
    if arch == "resnet50":
        return ResNet(Bottleneck, (3, 4, 6, 3), size, classes, float(dropout or 0.0))
    if arch == "resnet18":
        return ResNet(BasicBlock, (2, 2, 2, 2), size, classes, float(dropout or 0.0))
    if arch == "small":
        return SmallCNN(size, classes, int(config.get("width") or 16), 0.3 if dropout is None else float(dropout))
    raise ValueError(f"unknown classifier backbone {arch!r}; expected one of {', '.join(ARCHS)}")


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- user-supplied pretrained weights -----------------------------------------------------------

def _state_dict_in(obj, path) -> dict:
    """The tensors of a weights file: a plain state_dict, one under "state_dict"/"model", or one of
    this project's classifier checkpoints (models.classifier)."""
    if isinstance(obj, dict) and isinstance(obj.get("models"), dict) and "classifier" in obj["models"]:
        obj = obj["models"]["classifier"]
    for key in ("state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not obj or not all(torch.is_tensor(v) for v in obj.values()):
        raise ValueError(f"{path}: not a state_dict of tensors (nor a checkpoint holding one)")
    return {re.sub(r"^(module\.|_orig_mod\.)+", "", k): v for k, v in obj.items()}


def _torchvision_vgg_names(model: VGG16, state: dict) -> dict:
    """torchvision's VGG-16 names its layers features.N / classifier.N: map them, in order, onto
    conv1_1 … conv5_3, fc6, fc7, fc8."""
    conv_keys = sorted({int(k.split(".")[1]) for k in state if k.startswith("features.")})
    fc_keys = sorted({int(k.split(".")[1]) for k in state if k.startswith("classifier.")})
    names = dict(zip((f"features.{i}" for i in conv_keys), model.conv_names))
    names.update(zip((f"classifier.{i}" for i in fc_keys), ("fc6", "fc7", "fc8")))
    renamed = {}
    for key, value in state.items():
        prefix, _, leaf = key.rpartition(".")
        renamed[f"{names.get(prefix, prefix)}.{leaf}"] = value
    return renamed


def load_init_weights(model: nn.Module, path, skip=()) -> dict:
    """Load pretrained tensors by name into `model`. Tensors whose names start with one of `skip`
    (e.g. "fc8" for VGG-Face's 2622 identities) are left out on purpose. Any other tensor with a
    different shape is an error naming it; no tensor in common is an error. Returns the report:
    matched, skipped, missing (left at initialisation) and unused (in the file, not the model)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise FileNotFoundError(f"--init-weights {path}: no such file") from None
    except Exception as err:  # pickle/zip errors differ by damage; all mean "not loadable"
        raise ValueError(f"--init-weights {path}: not a loadable weights file ({type(err).__name__}: {err})") from None
    state = _state_dict_in(obj, path)
    if isinstance(model, VGG16) and any(k.startswith("features.") for k in state):
        state = _torchvision_vgg_names(model, state)
    own = model.state_dict()
    skip = tuple(s for s in skip if s)
    skipped = sorted(k for k in state if k.startswith(skip)) if skip else []
    candidates = {k: v for k, v in state.items() if k not in skipped}
    mismatched = [f"{k}: file {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                  for k, v in candidates.items() if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if mismatched:
        raise ValueError(f"--init-weights {path}: {len(mismatched)} tensors do not fit this backbone: "
                         + "; ".join(mismatched[:6]) + (" …" if len(mismatched) > 6 else "")
                         + ". Leave such tensors out on purpose with --init-skip NAME (e.g. the class layer).")
    matched = sorted(k for k in candidates if k in own)
    if not matched:
        raise ValueError(f"--init-weights {path}: no tensor name in common with this backbone (file has e.g. "
                         f"{', '.join(list(state)[:3])}; model has e.g. {', '.join(list(own)[:3])})")
    merged = dict(own)
    merged.update({k: candidates[k].to(own[k].dtype) for k in matched})
    model.load_state_dict(merged)
    return {"file": str(path), "matched": matched, "skipped": skipped,
            "missing": sorted(k for k in own if k not in candidates or k in skipped),
            "unused": sorted(k for k in candidates if k not in own)}
