"""One checkpoint file per save: networks, optimisers, schedulers, step/epoch, RNG states, config.

The file is a single `torch.save`d dict, written atomically (temporary file + `os.replace`), and
loads with `torch.load(weights_only=True)`: the config holds only JSON types and every RNG state
is a tensor. Keys:

    kind        "uit_generator" | "cgit_generator" | "classifier" (engines/contract.py: the same kinds as
                the models it exports; "exprada-uit" / "exprada-cgit" of older files load as the first two)
    config      dict: the run's settings (width, image_size, classes, ... everything that rebuilds
                the networks), with how it ran under config["runtime"]
    run_state   dict: what the run worked out from its data (image counts, total_steps, ...);
                absent from checkpoints written before it existed, which kept it in `config`
    models      name -> state_dict   (ExprADA: G_ts — target→source, the car's generator —, G_st, D_s, D_t)
    optimizers  name -> state_dict
    schedulers  name -> state_dict
    step, epoch int
    rng         dict of tensors (torch CPU, CUDA, numpy, python)

Beside the dict, the archive holds one more record, `.data/exprada_sha256`: the sha256 of all its
other records, checked before `torch.load` reads anything (torch.load ignores records it does not
know). Files saved before it existed load unverified, with a note saying so. A trainer keeps its
last checkpoints as last.pt, last.1.pt, last.2.pt, … (newest first); resuming takes the newest one
that loads and verifies.
"""
import hashlib
import json
import logging
import os
import random
import re
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engines.contract import CGIT_GENERATOR, CLASSIFIER, KINDS, UIT_GENERATOR, current_kind

REQUIRED_KEYS = ("kind", "config", "models", "optimizers", "schedulers", "step", "epoch", "rng")
CHECKPOINT_DIR = "checkpoints"
LAST = "last.pt"
DIGEST_RECORD = ".data/exprada_sha256"   # inside the archive's top folder, beside torch's own .data/ records


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked; the message names the file and the mismatch."""


def unwrap(module: nn.Module) -> nn.Module:
    """The plain network inside DDP and/or torch.compile wrappers (their state_dict keys differ)."""
    while True:
        if hasattr(module, "module") and isinstance(module.module, nn.Module):
            module = module.module
        elif hasattr(module, "_orig_mod"):
            module = module._orig_mod
        else:
            return module


# ---- RNG states as tensors (weights_only=True cannot load numpy or python objects) -------------

def capture_rng() -> dict:
    np_state = np.random.get_state()
    py_version, py_state, py_gauss = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": torch.tensor([np_state[2], np_state[3]], dtype=torch.int64),
        "numpy_gauss": torch.tensor(np_state[4], dtype=torch.float64),
        "python": torch.tensor(py_state, dtype=torch.int64),
        "python_version": torch.tensor(py_version),
        "python_gauss": torch.tensor(float("nan") if py_gauss is None else py_gauss, dtype=torch.float64),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.stack(torch.cuda.get_rng_state_all())
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    pos, has_gauss = (int(v) for v in state["numpy_pos"])
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss,
                         float(state["numpy_gauss"])))
    gauss = float(state["python_gauss"])
    random.setstate((int(state["python_version"]), tuple(int(v) for v in state["python"]),
                     None if gauss != gauss else gauss))
    if "cuda" in state and torch.cuda.is_available():
        saved = list(state["cuda"])
        torch.cuda.set_rng_state_all(saved[:torch.cuda.device_count()])


def generator_state(generator: torch.Generator) -> torch.Tensor:
    return generator.get_state()


# ---- save / load ----------------------------------------------------------------------------

def _check_json(config: dict) -> None:
    try:
        json.dumps(config, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"checkpoint config must hold only JSON types: {err}") from None


def save_checkpoint(path, *, kind: str, config: dict, models: dict, optimizers: dict | None = None,
                    schedulers: dict | None = None, step: int = 0, epoch: int = 0, rng: dict | None = None,
                    extra: dict | None = None, run_state: dict | None = None, keep: int = 1) -> Path:
    """Write one checkpoint atomically, with its sha256 inside. `models` may hold wrapped modules
    (DDP, compiled): their plain state_dicts are stored. `extra` is stored under "extra" (tensors /
    JSON types only). `keep` > 1 keeps that many in all: the file there before becomes NAME.1.pt, …"""
    if kind not in KINDS:
        raise ValueError(f"checkpoint kind {kind!r}; expected one of {KINDS}")
    _check_json(config)
    _check_json(run_state or {})
    path = Path(path)
    state = {
        "kind": kind,
        "config": config,
        "models": {name: unwrap(m).state_dict() if isinstance(m, nn.Module) else m for name, m in models.items()},
        "optimizers": {name: o.state_dict() for name, o in (optimizers or {}).items()},
        "schedulers": {name: s.state_dict() for name, s in (schedulers or {}).items()},
        "step": int(step),
        "epoch": int(epoch),
        "rng": capture_rng() if rng is None else rng,
    }
    if run_state is not None:
        state["run_state"] = run_state
    if extra:
        state["extra"] = extra
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    torch.save(state, tmp)
    _add_digest(tmp)
    for index in range(keep - 1, 0, -1):   # the older copies move one place back; the oldest is dropped
        newer = older_copy(path, index - 1) if index > 1 else path
        if newer.exists():
            os.replace(newer, older_copy(path, index))
    os.replace(tmp, path)
    return path


def older_copy(path: Path, index: int) -> Path:
    """The index-th older copy of a kept checkpoint: last.pt → last.1.pt, last.2.pt, …"""
    return path.with_name(f"{path.stem}.{index}{path.suffix}")


def _records_sha256(archive: zipfile.ZipFile) -> str:
    """sha256 over the names and bytes of every record but the digest (zipfile checks each CRC-32 too)."""
    digest = hashlib.sha256()
    for info in archive.infolist():
        if not info.filename.endswith("/" + DIGEST_RECORD):
            digest.update(info.filename.encode())
            digest.update(archive.read(info))
    return digest.hexdigest()


def _add_digest(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        folder, digest = archive.namelist()[0].split("/")[0], _records_sha256(archive)
    with zipfile.ZipFile(path, "a") as archive:
        archive.writestr(f"{folder}/{DIGEST_RECORD}", digest)


def _verified(path: Path) -> bool:
    """True when the file matches the sha256 saved in it, False when it has none (saved before
    checkpoints carried one); CheckpointError when it does not match."""
    with zipfile.ZipFile(path) as archive:
        names = [name for name in archive.namelist() if name.endswith("/" + DIGEST_RECORD)]
        if not names:
            return False
        if archive.read(names[0]).decode() != _records_sha256(archive):
            raise CheckpointError(f"{path}: damaged: its contents differ from the sha256 saved with it")
    return True


def _checkpoint_file(path) -> Path:
    """A checkpoint file, or a run folder's (RUN/checkpoints/last.pt, or RUN/last.pt without that folder)."""
    path = Path(path)
    if not path.is_dir():
        return path
    return path / CHECKPOINT_DIR / LAST if (path / CHECKPOINT_DIR).is_dir() else path / LAST


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load and check a checkpoint; a clear error for a missing, foreign or damaged file.
    state["notes"] lists what a caller should log (an unverified file)."""
    path = _checkpoint_file(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    if path.suffix in (".onnx", ".pt2"):   # the shipped models are exports: say what is wanted instead
        raise CheckpointError(f"{path}: an exported model, not a training checkpoint; give the run folder (or its "
                              f"checkpoints/*.pt) it was exported from")
    try:
        verified = _verified(path)   # before torch.load: a damaged file is never unpickled
        state = torch.load(path, map_location=map_location, weights_only=True)
    except CheckpointError:
        raise
    except Exception as err:  # pickle/zip errors vary by damage; all mean "not a usable checkpoint"
        raise CheckpointError(f"{path}: not a loadable checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(state, dict) or any(key not in state for key in REQUIRED_KEYS):
        missing = [k for k in REQUIRED_KEYS if not isinstance(state, dict) or k not in state]
        raise CheckpointError(f"{path}: not a checkpoint of this project (missing {', '.join(missing)})")
    state["kind"] = current_kind(state["kind"])
    if state["kind"] not in KINDS:
        raise CheckpointError(f"{path}: unknown checkpoint kind {state['kind']!r}; expected one of {KINDS}")
    state["path"] = str(path)
    state["notes"] = [] if verified else [f"{path}: no sha256 inside (saved before checkpoints carried one): "
                                          "loaded unverified"]
    return state


def load_newest_good(path, map_location="cpu") -> dict:
    """The newest of a checkpoint (or a run folder's last.pt) and its older copies that loads and
    verifies; when it is an older copy, its first note names each newer one and why it was passed
    over. CheckpointError naming each file and its fault when none does."""
    path = _checkpoint_file(path)
    older = sorted((int(m[1]), p) for p in path.parent.glob(f"{path.stem}.*{path.suffix}")
                   if (m := re.fullmatch(rf"{re.escape(path.stem)}\.(\d+){re.escape(path.suffix)}", p.name)))
    faults = []
    for candidate in [path, *(p for _, p in older)]:
        try:
            state = load_checkpoint(candidate, map_location)
        except CheckpointError as err:
            faults.append(str(err))
            continue
        if faults:
            state["notes"].insert(0, f"{'; '.join(faults)}: resuming from the older copy {candidate.name} "
                                     f"(step {state['step']})")
        return state
    raise CheckpointError(faults[0] if len(faults) == 1 else "no usable checkpoint: " + "; ".join(faults))


def checkpoint_path(run_dir, step: int | None = None) -> Path:
    """RUN_DIR/checkpoints/last.pt, or step_00001234.pt for a kept snapshot."""
    name = LAST if step is None else f"step_{step:08d}.pt"
    return Path(run_dir) / CHECKPOINT_DIR / name


def config_mismatches(saved: dict, current: dict, keys) -> list[str]:
    """'key: checkpoint X, now Y' for every key in `keys` whose values differ."""
    return [f"{key}: checkpoint {saved.get(key)!r}, now {current.get(key)!r}"
            for key in keys if saved.get(key) != current.get(key)]


def load_state_checked(module: nn.Module, state_dict: dict, what: str) -> None:
    """load_state_dict with an error naming every missing, unexpected or mis-shaped tensor."""
    own = unwrap(module).state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = [f"{k}: checkpoint {tuple(state_dict[k].shape)} vs network {tuple(own[k].shape)}"
              for k in own if k in state_dict and tuple(own[k].shape) != tuple(state_dict[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            parts.append(f"{len(shapes)} shape mismatches (first: {'; '.join(shapes[:3])})")
        if missing:
            parts.append(f"{len(missing)} tensors missing from the checkpoint (first: {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected tensors (first: {', '.join(unexpected[:3])})")
        raise CheckpointError(f"{what} does not fit this architecture: " + "; ".join(parts))
    unwrap(module).load_state_dict(state_dict)


# Each kind as a message names it, and the command that trains one.
MADE_BY = {UIT_GENERATOR: ("UIT generator", "python -m train exprada --mode uit"),
           CGIT_GENERATOR: ("CGIT generator", "python -m train exprada --mode cgit"),
           CLASSIFIER: ("classifier", "python -m train classifier")}


def load_model(path, name: str | None = None, map_location="cpu", *, expect: str | None = None, needed_by: str = ""):
    """Rebuild one network of a checkpoint: (module in eval mode, config, kind). The config comes
    with the run's state beside the settings (e.g. a classifier's train_classes, which evaluation reads).
    With `expect` (a kind), a checkpoint of another kind is refused before anything is built, the
    message naming what `needed_by` it and how such a model is trained.

    ExprADA checkpoints: name is one of G_ts (the target→source generator the car runs), G_ts_ema
    (its weight average, the default when the run kept one), G_st, D_s, D_t. Classifier checkpoints: the one model, built by
    `train.classifier_nets.build_classifier(config)`.
    """
    state = load_checkpoint(path, map_location=map_location)
    for note in state["notes"]:
        logging.getLogger(__name__).warning(note)
    kind, config, models = state["kind"], state["config"], state["models"]
    if expect is not None and kind != expect:
        what, command = MADE_BY[expect]
        raise CheckpointError(f"{state['path']}: a {kind} checkpoint; {needed_by or 'this'} needs a {what} ({command})")
    if name is None:
        name = ("G_ts_ema" if "G_ts_ema" in models else "G_ts") if kind != CLASSIFIER else next(iter(models))
    if name not in models:
        raise CheckpointError(f"{state['path']}: no model {name!r} in this {kind} checkpoint; it holds {sorted(models)}")
    if kind != CLASSIFIER:   # an ExprADA run: four networks
        from .networks import build_network
        try:
            module = build_network(config, name)
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"{state['path']}: config cannot build {name}: {err}") from None
    else:
        try:
            from .classifier_nets import build_classifier
        except ImportError as err:
            raise CheckpointError(f"{state['path']}: classifier checkpoints need "
                                  f"train.classifier_nets.build_classifier ({err})") from None
        module = build_classifier(config)
    load_state_checked(module, models[name], f"{state['path']} model {name!r} (config {_arch_summary(config)})")
    return module.eval(), {**state.get("run_state", {}), **config}, kind


def exported_classifier(path) -> nn.Module:
    """A classifier's exported program (.pt2 from `train export`; the graph traced in eval mode) as a module,
    for the semantic term when only a model's exports are kept (the shipped models/classifier.pt2): the
    term then holds a generator to exactly the classifier that ships. Its output is (logits, embedding)
    as a classifier network's; `image_size` is read from its metadata. Loaded as the runtime loads a
    program: only when its bytes match the digest export wrote beside it (a .pt2 can run code)."""
    from engines.base import EngineFileError
    from engines.contract import CLASSES, MetadataError, ModelInfo
    from engines.torch_backend import TorchEngine

    try:
        engine = TorchEngine(path)
        info = ModelInfo.from_metadata(engine.metadata, str(path))
    except (EngineFileError, MetadataError, OSError, ValueError) as error:
        raise CheckpointError(f"--semantic-classifier: {error}") from None
    if info.kind != CLASSIFIER or info.classes != tuple(CLASSES):
        raise CheckpointError(f"{path}: a {info.kind} with classes {list(info.classes)}; --semantic-classifier needs "
                              f"a classifier of the seven expressions {list(CLASSES)} (`python -m train classifier`)")
    module = engine.module   # the graph export traced in eval mode (it has no eval() of its own)
    module.image_size = info.image_size
    return module


def _arch_summary(config: dict) -> str:
    keys = ("mode", "width", "image_size", "arch", "classes")
    return ", ".join(f"{k}={config[k]}" for k in keys if k in config)
