"""Where built TensorRT engines live, and when one may be reused.

A TensorRT plan only runs on the TensorRT version and GPU model it was built for, and only means
the model it was built from at the precision and shapes asked. So every plan has a JSON sidecar
holding its key — ONNX sha256, TensorRT version, GPU name, compute capability, precision, input
shapes (min/opt/max) — and the plan's own sha256:
- same key, plan intact        → reuse;
- other key (stale or foreign) → rebuild in place;
- same key, plan bytes differ from the recorded sha256 (truncated, overwritten) → EngineFileError
  naming the file: a damaged cache is reported, not silently papered over.
Processes that want the same plan at once (the pipeline's replicas, each loading its models) take
turns (`building`): one builds, the others wait and reuse its plan.
Nothing here needs TensorRT, so it is tested everywhere.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from engines.base import EngineFileError


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class EngineKey:
    onnx_sha256: str
    tensorrt_version: str
    gpu_name: str
    compute_capability: str
    precision: str
    shapes: tuple  # ((input name, min shape, opt shape, max shape), ...)

    def as_dict(self) -> dict:
        data = asdict(self)
        data["shapes"] = [[name, list(lo), list(opt), list(hi)] for name, lo, opt, hi in self.shapes]
        return data

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_dict(), sort_keys=True).encode()).hexdigest()


def cache_paths(cache_dir, onnx_path, precision: str) -> tuple[Path, Path]:
    """(plan, sidecar) for a model at a precision. One slot per (model file, precision): a rebuild
    for a new GPU or TensorRT replaces the old plan instead of piling up beside it."""
    stem = Path(onnx_path).name.removesuffix(".onnx")
    plan = Path(cache_dir) / f"{stem}.{precision}.plan"
    return plan, plan.with_suffix(".plan.json")


def lookup(plan: Path, sidecar: Path, key: EngineKey) -> str:
    """'hit' (reuse), 'missing' or 'stale' (build); raises EngineFileError for a damaged entry."""
    if not plan.is_file() or not sidecar.is_file():
        return "missing"
    try:
        recorded = json.loads(sidecar.read_text())
        recorded_key, recorded_sha = recorded["key"], recorded["plan_sha256"]
    except (ValueError, KeyError, TypeError) as error:
        raise EngineFileError(f"TensorRT engine cache entry {sidecar} is unreadable ({error}); "
                              f"delete it and {plan} to rebuild") from error
    if recorded_key != key.as_dict():
        return "stale"
    if file_sha256(plan) != recorded_sha:
        raise EngineFileError(f"TensorRT engine {plan} is corrupt: its contents do not match the sha256 "
                              f"recorded when it was built ({sidecar}); delete both to rebuild")
    return "hit"


def describe_mismatch(sidecar: Path, key: EngineKey) -> list[str]:
    """Which key fields differ between a cached plan and what is asked (for logs and errors)."""
    try:
        recorded = json.loads(sidecar.read_text())["key"]
    except (OSError, ValueError, KeyError):
        return ["no readable key"]
    wanted = key.as_dict()
    return [f"{field}: cached {recorded.get(field)!r}, now {wanted[field]!r}"
            for field in wanted if recorded.get(field) != wanted[field]]


@contextlib.contextmanager
def building(plan: Path):
    """Hold this plan's build lock (a lock file beside it) for a lookup and the build that may follow.
    Why: two builders at once take minutes each, and TensorRT's plans are not byte-identical from one
    build to the next — one builder's sidecar could end up vouching for the other's plan, which the
    next lookup would call corrupt. The lock goes with its process, so a crashed builder holds no one."""
    plan.parent.mkdir(parents=True, exist_ok=True)
    with open(plan.with_name(f".{plan.name}.lock"), "ab") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def store(plan: Path, sidecar: Path, key: EngineKey, plan_bytes: bytes, metadata: dict) -> None:
    """Write plan then sidecar, each atomically; the sidecar last, so a crash mid-write leaves a
    plan without a sidecar ('missing': rebuilt), never a sidecar vouching for a partial plan."""
    plan.parent.mkdir(parents=True, exist_ok=True)
    _atomic_write(plan, plan_bytes)
    record = {"key": key.as_dict(), "plan_sha256": hashlib.sha256(plan_bytes).hexdigest(), "metadata": metadata}
    _atomic_write(sidecar, json.dumps(record, indent=1).encode())


def read_sidecar(sidecar: Path) -> dict:
    try:
        return json.loads(sidecar.read_text())
    except (OSError, ValueError) as error:
        raise EngineFileError(f"TensorRT engine sidecar {sidecar} is missing or unreadable: {error}") from error


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
