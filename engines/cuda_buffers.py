"""Device and pinned host buffers for the TensorRT runner, reused across calls.

Allocating per call costs more than a small generator's inference, so each tensor keeps one
device allocation and one page-locked host array that only grow: a smaller batch reuses the
larger buffers (views of the first `n` elements), a larger one reallocates once.
`driver` is `pycuda.driver` (mem_alloc, pagelocked_empty); everything is freed by `free()`.
"""
from __future__ import annotations

import numpy as np


class BufferPool:
    def __init__(self, driver):
        self.driver = driver
        self._device: dict[str, tuple[object, int]] = {}
        self._host: dict[str, np.ndarray] = {}

    def device(self, name: str, nbytes: int):
        """A device allocation of at least `nbytes` for tensor `name` (int(allocation) is its address)."""
        nbytes = max(int(nbytes), 1)
        current = self._device.get(name)
        if current is None or current[1] < nbytes:
            if current is not None:
                current[0].free()
            self._device[name] = (self.driver.mem_alloc(nbytes), nbytes)
        return self._device[name][0]

    def host(self, name: str, shape: tuple, dtype) -> np.ndarray:
        """A page-locked host array of `shape` (a view into a grow-only pinned buffer)."""
        dtype = np.dtype(dtype)
        count = int(np.prod(shape))
        current = self._host.get(name)
        if current is None or current.dtype != dtype or current.size < count:
            current = self.driver.pagelocked_empty(max(count, 1), dtype)
            self._host[name] = current
        return current[:count].reshape(shape)

    def free(self) -> None:
        for allocation, _ in self._device.values():
            allocation.free()
        self._device.clear()
        self._host.clear()

    @property
    def device_bytes(self) -> int:
        return sum(size for _, size in self._device.values())
