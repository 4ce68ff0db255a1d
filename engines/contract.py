"""The model contract: what an exported model is, its tensor names and the `exprada.*` metadata it carries.

Training, export, calibration and the car's runtime all read these facts here. The module imports
nothing of ours but `face.expressions`, so train/ and the runtime may both import it.
Normalisation: networks take x/127.5-1 of the uint8 BGR image, NCHW float32; `face.imageio`'s
`to_network` / `from_network` are that conversion.

    info = ModelInfo.of("models/classifier.onnx")       # or engine.info of a loaded Engine
    info.kind, info.classes, info.image_size, info.width, info.precision
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from face.expressions import EXPRESSIONS

# Model kinds: one vocabulary for exported models and for the training checkpoints that make them
# (a UIT run's checkpoint is of kind UIT_GENERATOR: the generator it exports is its purpose).
UIT_GENERATOR, CGIT_GENERATOR, CLASSIFIER = "uit_generator", "cgit_generator", "classifier"
KINDS = (UIT_GENERATOR, CGIT_GENERATOR, CLASSIFIER)
# Checkpoints written before the vocabulary was one still say so; they load under the new name.
FORMER_KINDS = {"exprada-uit": UIT_GENERATOR, "exprada-cgit": CGIT_GENERATOR}


def current_kind(kind: str) -> str:
    """A kind as files may carry it → the kind of today's vocabulary (unknown kinds unchanged)."""
    return FORMER_KINDS.get(kind, kind)

# Tensor names per kind. The images are N×3×S×S, CGIT's `expression` a one-hot N×len(classes).
INPUTS = {UIT_GENERATOR: ("image", "side_map"), CGIT_GENERATOR: ("image", "side_map", "expression"),
          CLASSIFIER: ("image",)}
OUTPUTS = {UIT_GENERATOR: ("translated", "side_map_out"), CGIT_GENERATOR: ("translated", "side_map_out"),
           CLASSIFIER: ("logits", "embedding")}

CLASSES = EXPRESSIONS
DEFAULT_IMAGE_SIZE = 128
NORMALIZATION = "x/127.5-1"
PRECISIONS = ("fp32", "fp16", "int8")

# Metadata keys (ONNX metadata_props; a .pt2 carries the same dict as PROGRAM_METADATA_FILE). Values are strings.
KIND_KEY = "exprada.kind"
CLASSES_KEY = "exprada.classes"                 # JSON list of class names
IMAGE_SIZE_KEY = "exprada.image_size"
WIDTH_KEY = "exprada.width"                     # the network's base channel count
NORMALIZATION_KEY = "exprada.normalization"
CONFIG_SHA256_KEY = "exprada.config_sha256"     # ties the model to the training config that made it
PRECISION_KEY = "exprada.precision"             # fp16 | int8, written by calibration; absent means fp32
QUANTIZATION_KEY = "exprada.quantization"       # JSON: method, target, ...
PROGRAM_METADATA_FILE, PROGRAM_IO_FILE = "exprada_metadata.json", "exprada_io.json"   # a .pt2's extra files

# Export writes a digest file beside each model (uit_generator.pt2 → uit_generator.pt2.sha256) in
# `sha256sum`'s format ("<64 hex digits>  uit_generator.pt2"), so `sha256sum -c` checks a copy too; the
# engines check it before loading (engines/base.py `verify_digest`), and load a .pt2 only with one.
DIGEST_SUFFIX = ".sha256"


class MetadataError(ValueError):
    """A model's `exprada.*` metadata is missing or malformed; the message names the file."""


def io_names(kind: str) -> tuple[list[str], list[str]]:
    """(input names, output names) of a model kind."""
    check_kind(kind)
    return list(INPUTS[kind]), list(OUTPUTS[kind])


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {', '.join(KINDS)}")
    return kind


@dataclass(frozen=True)
class ModelInfo:
    """The contract's facts about one model, as its metadata states them."""

    kind: str
    classes: tuple[str, ...] = CLASSES
    image_size: int = DEFAULT_IMAGE_SIZE
    width: int | None = None            # optional: hand-made models may leave it out
    precision: str = "fp32"
    quantization: dict = field(default_factory=dict)
    config_sha256: str = ""
    source: str = field(default="", compare=False)   # the file, for messages

    @classmethod
    def of(cls, path) -> ModelInfo:
        """Read a model file's metadata (.onnx or .pt2) without starting a runtime."""
        return cls.from_metadata(read_metadata(path), str(path))

    @classmethod
    def from_metadata(cls, metadata: dict, source="model") -> ModelInfo:
        """Parse `exprada.*` metadata; MetadataError naming `source` for a missing or malformed key."""
        def required(key):
            if key not in metadata:
                raise MetadataError(f"{source}: no {key} in its metadata; "
                                    "was it written by `python -m train export`?")
            return metadata[key]

        def bad(key, expected):
            return MetadataError(f"{source}: {key} is {metadata[key]!r}, expected {expected}")

        kind = required(KIND_KEY)
        if kind not in KINDS:
            raise bad(KIND_KEY, " | ".join(KINDS))
        classes = _json(required(CLASSES_KEY))
        if not (isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes)):
            raise bad(CLASSES_KEY, "a JSON list of class names")
        image_size = _positive_int(required(IMAGE_SIZE_KEY))
        if image_size is None:
            raise bad(IMAGE_SIZE_KEY, "a positive integer")
        width = _positive_int(metadata.get(WIDTH_KEY))
        if width is None and WIDTH_KEY in metadata:
            raise bad(WIDTH_KEY, "a positive integer")
        if metadata.get(NORMALIZATION_KEY, NORMALIZATION) != NORMALIZATION:
            raise bad(NORMALIZATION_KEY, NORMALIZATION)
        precision = metadata.get(PRECISION_KEY, "fp32")
        if precision not in PRECISIONS:
            raise bad(PRECISION_KEY, " | ".join(PRECISIONS))
        quantization = _json(metadata.get(QUANTIZATION_KEY, "{}"))
        if not isinstance(quantization, dict):
            raise bad(QUANTIZATION_KEY, "a JSON object")
        return cls(kind, tuple(classes), image_size, width, precision, quantization,
                   metadata.get(CONFIG_SHA256_KEY, ""), str(source))

    def to_metadata(self) -> dict[str, str]:
        """The metadata that states these facts (what export writes); `from_metadata` reads it back."""
        metadata = {KIND_KEY: self.kind, CLASSES_KEY: json.dumps(list(self.classes)),
                    IMAGE_SIZE_KEY: str(int(self.image_size))}
        if self.width is not None:
            metadata[WIDTH_KEY] = str(int(self.width))
        metadata[NORMALIZATION_KEY] = NORMALIZATION
        if self.config_sha256:
            metadata[CONFIG_SHA256_KEY] = self.config_sha256
        if self.precision != "fp32":
            metadata[PRECISION_KEY] = self.precision
        if self.quantization:
            metadata[QUANTIZATION_KEY] = json.dumps(self.quantization)
        return metadata

    def expect(self, *kinds: str) -> ModelInfo:
        """Itself, when its kind is one of `kinds`; otherwise a MetadataError naming the file."""
        if self.kind not in kinds:
            raise MetadataError(f"{self.source or 'model'} is a {self.kind} model; expected {' or '.join(kinds)}")
        return self

    @property
    def inputs(self) -> tuple[str, ...]:
        return INPUTS[self.kind]

    @property
    def outputs(self) -> tuple[str, ...]:
        return OUTPUTS[self.kind]


def digest_path(path) -> Path:
    """MODEL.pt2 → MODEL.pt2.sha256: where a model's digest is recorded."""
    return Path(f"{path}{DIGEST_SUFFIX}")


def write_digest(path) -> Path:
    """Record a model file's sha256 beside it (`digest_path`); returns the digest file."""
    path = Path(path)
    digest = digest_path(path)
    digest.write_text(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}\n")
    return digest


def read_metadata(path) -> dict[str, str]:
    """A model file's metadata without starting a runtime: an .onnx file's metadata_props or a .pt2
    program's PROGRAM_METADATA_FILE (read from its zip archive: nothing is unpickled). A TensorRT
    .plan carries none of its own — the engine cache keeps it beside the plan, and the TensorRT
    backend reads it there — so the ONNX file it was built from is the one to read."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {path} not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".onnx":
            import onnx
            model = onnx.load(str(path), load_external_data=False)
            return {p.key: p.value for p in model.metadata_props}
        if suffix == ".pt2":
            return _program_metadata(path)
        if suffix == ".plan":
            raise MetadataError(f"{path}: a TensorRT plan carries no metadata of its own; read the ONNX file "
                                f"it was built from")
    except (MetadataError, FileNotFoundError):
        raise
    except Exception as error:  # protobuf, zip and JSON decoders raise their own types
        raise MetadataError(f"{path}: not a readable model file ({error})") from None
    raise MetadataError(f"{path}: not a model file (.onnx or .pt2)")


def _program_metadata(path: Path) -> dict[str, str]:
    """torch.export.save keeps extra files in its zip archive under <archive>/extra/."""
    import zipfile

    with zipfile.ZipFile(path) as archive:
        names = [n for n in archive.namelist() if n.endswith("/extra/" + PROGRAM_METADATA_FILE)]
        if not names:
            raise MetadataError(f"{path}: no {PROGRAM_METADATA_FILE} in the program; "
                                "was it written by `python -m train export`?")
        return json.loads(archive.read(names[0]))


def _json(text):
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return None


def _positive_int(text) -> int | None:
    try:
        number = int(text)
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None
