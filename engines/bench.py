"""Latency and throughput of engines. Several engines are timed in interleaved rounds, so that a
ratio between them is measured under the same load (the machine is shared)."""
from __future__ import annotations

import time

import numpy as np


def random_feeds(engine, batch: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs in the network range [-1, 1]; one-hot rows for an `expression` input."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for spec in engine.inputs:
        shape = tuple(batch if d is None else d for d in spec.shape)
        if spec.name == "expression":
            feeds[spec.name] = np.eye(shape[1], dtype=spec.dtype)[rng.integers(0, shape[1], batch)]
        else:
            feeds[spec.name] = rng.uniform(-1, 1, shape).astype(spec.dtype)
    return feeds


def _summary(times: list[float], batch: int) -> dict:
    ms = np.asarray(times) * 1e3
    return {"batch": batch, "runs": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "mean_ms": round(float(ms.mean()), 3),
            "min_ms": round(float(ms.min()), 3),
            "throughput_per_s": round(batch * 1e3 / float(np.percentile(ms, 50)), 1)}


def measure(engine, batch: int, runs: int = 50, warmup: int = 5, sync=None) -> dict:
    """p50/p99/mean latency (ms) and throughput (samples/s at p50) of one engine at one batch."""
    return compare({"engine": engine}, batch, runs, warmup, sync)["engine"]


def compare(named_engines: dict, batch: int, runs: int = 50, warmup: int = 5, sync=None) -> dict:
    """Time engines round-robin on the same inputs; {name: summary}. `sync` (e.g. a CUDA synchronise)
    runs after each call when the engine returns before the work is done."""
    feeds = {name: random_feeds(engine, batch) for name, engine in named_engines.items()}
    for name, engine in named_engines.items():
        for _ in range(warmup):
            engine.run(feeds[name])
    times = {name: [] for name in named_engines}
    for _ in range(runs):
        for name, engine in named_engines.items():
            start = time.perf_counter()
            engine.run(feeds[name])
            if sync is not None:
                sync()
            times[name].append(time.perf_counter() - start)
    return {name: _summary(t, batch) for name, t in times.items()}
