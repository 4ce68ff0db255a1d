"""The one interface every backend implements, and the checks all of them share.

An engine is loaded from an exported artefact (ONNX, torch.export program, TensorRT plan) and run
on a dict of numpy arrays; wrong feeds are refused before they reach the runtime, with an error
that names the tensor and what was expected versus what was given.
"""
from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.contract import ModelInfo, digest_path


@dataclass(frozen=True)
class TensorSpec:
    """One input or output: its name, shape (None for a dynamic axis) and numpy dtype."""

    name: str
    shape: tuple
    dtype: np.dtype

    def describe(self) -> str:
        dims = ",".join("N" if d is None else str(d) for d in self.shape)
        return f"{self.name}[{dims}] {np.dtype(self.dtype).name}"


class NonFiniteOutputError(ValueError):
    """An engine produced NaN or Inf; raised by `check_finite`, never swallowed."""


class Engine(ABC):
    """Base class: subclasses set `inputs`, `outputs`, `metadata`, `path` and implement `_run`."""

    backend = "base"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    metadata: dict[str, str]
    path: str

    @property
    def info(self) -> ModelInfo:
        """The contract's facts from `metadata` (kind, classes, image size, ...); MetadataError naming
        the file when they are missing or malformed."""
        return ModelInfo.from_metadata(self.metadata, self.path)

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch: {input name: array} → {output name: array}. Feeds are checked first."""
        feeds = self.check_feeds(feeds)
        return self._run(feeds)

    @abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The backend's own run on feeds already checked."""

    def warmup(self, runs: int = 3, batch: int = 1) -> None:
        """Run zeros through the engine so allocations, autotuning and graph capture happen now."""
        feeds = self.example_feeds(batch)
        for _ in range(runs):
            self._run(feeds)

    def example_feeds(self, batch: int = 1, fill: float = 0.0) -> dict[str, np.ndarray]:
        """Feeds of the right shape and dtype, dynamic axes set to `batch`."""
        return {
            spec.name: np.full(tuple(batch if d is None else d for d in spec.shape), fill, dtype=spec.dtype)
            for spec in self.inputs
        }

    def check_feeds(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Refuse missing, unknown, mistyped or misshapen inputs; return contiguous arrays."""
        if not isinstance(feeds, dict):
            raise TypeError(f"{self._where()}: feeds must be a dict of name → array, got {type(feeds).__name__}")
        expected = {spec.name for spec in self.inputs}
        missing = sorted(expected - feeds.keys())
        unknown = sorted(feeds.keys() - expected)
        if missing or unknown:
            raise ValueError(
                f"{self._where()}: inputs expected {sorted(expected)}, got {sorted(feeds)}"
                + (f" (missing {missing})" if missing else "") + (f" (unknown {unknown})" if unknown else ""))
        checked, batch = {}, None
        for spec in self.inputs:
            array = feeds[spec.name]
            if not isinstance(array, np.ndarray):
                raise TypeError(f"{self._where()}: input {spec.name!r} must be a numpy array, "
                                f"got {type(array).__name__}")
            if array.dtype != spec.dtype:
                raise ValueError(f"{self._where()}: input {spec.name!r} dtype expected "
                                 f"{np.dtype(spec.dtype).name}, got {array.dtype.name}")
            _check_shape(self._where(), spec, array.shape)
            if spec.shape and spec.shape[0] is None:
                if batch is not None and array.shape[0] != batch:
                    raise ValueError(f"{self._where()}: input {spec.name!r} batch {array.shape[0]} differs "
                                     f"from the other inputs' batch {batch}")
                batch = array.shape[0]
            checked[spec.name] = np.ascontiguousarray(array)
        return checked

    def _where(self) -> str:
        return f"{self.backend} engine {getattr(self, 'path', '?')}"

    def __repr__(self) -> str:
        ins = ", ".join(s.describe() for s in self.inputs)
        outs = ", ".join(s.describe() for s in self.outputs)
        return f"<{type(self).__name__} {getattr(self, 'path', '?')}: {ins} → {outs}>"


def _check_shape(where: str, spec: TensorSpec, shape: tuple) -> None:
    expected = "[" + ",".join("N" if d is None else str(d) for d in spec.shape) + "]"
    got = "[" + ",".join(str(d) for d in shape) + "]"
    if len(shape) != len(spec.shape):
        raise ValueError(f"{where}: input {spec.name!r} shape expected {expected}, got {got} "
                         f"({len(spec.shape)} axes expected, {len(shape)} given)")
    for axis, (want, have) in enumerate(zip(spec.shape, shape)):
        if want is not None and want != have:
            what = "channels" if axis == 1 and len(shape) == 4 else f"axis {axis}"
            raise ValueError(f"{where}: input {spec.name!r} shape expected {expected}, got {got} "
                             f"({what}: expected {want}, got {have})")
    if spec.shape and spec.shape[0] is None and shape[0] == 0:
        raise ValueError(f"{where}: input {spec.name!r} has an empty batch (shape {got})")


def check_finite(outputs: dict[str, np.ndarray], where: str = "engine") -> dict[str, np.ndarray]:
    """Raise NonFiniteOutputError naming each output holding NaN/Inf; return outputs unchanged otherwise.

    The runtime cannot know whether a NaN is a bug or a bad frame, so callers decide: check here,
    then drop or count the frame instead of publishing garbage.
    """
    bad = []
    for name, value in outputs.items():
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating):
            count = int(value.size - np.count_nonzero(np.isfinite(value)))
            if count:
                bad.append(f"{name!r} ({count} of {value.size} values NaN/Inf)")
    if bad:
        raise NonFiniteOutputError(f"{where}: non-finite output in " + ", ".join(bad))
    return outputs


class EngineFileError(ValueError):
    """An engine or model file exists but cannot be used (corrupt, truncated, foreign); names the file."""


def require_file(path, what: str = "model file"):
    """The path as a string; FileNotFoundError naming it when there is nothing there."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {path} not found")
    return str(path)


def verify_digest(path) -> bytes | None:
    """The model file's bytes, checked against its digest file (engines/contract.py `digest_path`);
    None when it has no digest file. EngineFileError naming the file when they differ."""
    digest = digest_path(path)
    if not digest.is_file():
        return None
    recorded = re.match(r"[0-9a-fA-F]{64}\b", digest.read_text(errors="replace"))
    if recorded is None:
        raise EngineFileError(f"{digest}: not a sha256 digest file (expected '<64 hex digits>  {Path(path).name}')")
    data = Path(path).read_bytes()
    if hashlib.sha256(data).hexdigest() != recorded[0].lower():
        raise EngineFileError(f"{path}: refused: its sha256 differs from the one recorded in {digest.name} (the "
                              f"file changed or was copied incompletely); copy it again with its {digest.name}, "
                              "or re-export it")
    return data
