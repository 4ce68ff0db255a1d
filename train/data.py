"""Torch datasets over `Sample` lists: read, square, resize, flip, crop, side maps; bad files skipped.

Reading goes through `face.imageio.read_image`, so training sees exactly the images the runtime
would. A file that cannot be read does not stop a run: the item comes back marked bad, the collate
function drops it from the batch and hands its path and reason to the trainer, which logs and
counts it.

Order and augmentation are decided by `StepBatchSampler` from (seed, step) alone, so a run resumed
at step k draws exactly the batches the uninterrupted run would have drawn, on any number of
processes.
"""
import hashlib
import logging
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from face.expressions import EXPRESSIONS
from face.imageio import read_image, to_network

from .datasets import EXPRESSION_PAIR_SUFFIXES, PAIR_SUFFIX, SIDE_MAP_SUFFIX, Sample, is_turned
from .datasets.pairs import EXPRESSION_PAIRS

log = logging.getLogger(__name__)


def square_resize(image: np.ndarray, size: int) -> np.ndarray:
    """Centre-crop to a square (keeps the face's aspect) and resize to size×size."""
    h, w = image.shape[:2]
    if h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        image = image[top:top + side, left:left + side]
    if image.shape[0] != size:
        shrink = image.shape[0] > size
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return image


CROP_SCALE = (0.8, 1.0)   # random crops: a square of 80–100 % of the side, scaled back


def crop_box(size: int, draw) -> tuple[int, int, int]:
    """(side, top, left) of a random square crop of a size×size image, from three uniform [0, 1) numbers."""
    side = int(round(size * (CROP_SCALE[0] + (CROP_SCALE[1] - CROP_SCALE[0]) * draw[0])))
    return side, int(draw[1] * (size - side + 1)), int(draw[2] * (size - side + 1))


def crop_square(image: np.ndarray, side: int, top: int, left: int) -> np.ndarray:
    """The side×side square at (top, left) of a square image (or of each image of a stack), scaled back to its size."""
    if image.ndim == 4:
        return np.stack([crop_square(one, side, top, left) for one in image])
    size = image.shape[0]
    return cv2.resize(image[top:top + side, left:left + side], (size, size), interpolation=cv2.INTER_AREA)


def side_map_beside(image_path: Path) -> Path:
    """Where the synthetic-data writer puts an image's side map: NAME.side.png next to NAME.ext."""
    image_path = Path(image_path)
    return image_path.with_name(image_path.stem + SIDE_MAP_SUFFIX)


def pair_beside(image_path: Path) -> Path:
    """Where a frontal render's frontal pair is (train.datasets.PAIR_SUFFIX): NAME.pair.png next to NAME.ext."""
    image_path = Path(image_path)
    return image_path.with_name(image_path.stem + PAIR_SUFFIX)


def expression_pair_beside(image_path: Path, expression: str) -> Path:
    """Where a face's expression pair for `expression` is (train.datasets.EXPRESSION_PAIR_SUFFIXES):
    NAME.as-<expression>.png next to NAME.ext."""
    image_path = Path(image_path)
    return image_path.with_name(image_path.stem + EXPRESSION_PAIR_SUFFIXES[expression])


PAIR_KINDS = ("frontal", "expression")  # what ImageDataset(pairs=...) loads with each image (`pairs_of`)


def pairs_of(sample: Sample, kind: str) -> list[Path | None]:
    """A sample's pairs of `kind`, None where it has none: its frontal pair, or its seven expression pairs
    in EXPRESSIONS order — those its dataset's structure gave (train.datasets.pairs), else the files
    beside it."""
    if kind == "frontal":
        paths = [pair_beside(sample.path)]
    elif EXPRESSION_PAIRS in sample.meta:
        paths = [None if path is None else Path(path) for path in sample.meta[EXPRESSION_PAIRS]]
    else:
        paths = [expression_pair_beside(sample.path, name) for name in EXPRESSIONS]
    return [path if path is not None and path.is_file() else None for path in paths]


class SideMaps:
    """Finds or makes the 3-channel landmark side map of each image.

    Order: NAME.side.png beside the image; else a cached map under `cache_dir` (never inside the
    user's dataset); else `face.side_map_for_image(bgr)`, written to the cache. When no face is
    found the map is all zeros (counted, and marked in the cache so it is not searched again).
    """

    def __init__(self, cache_dir, compute=None):
        self.cache_dir = Path(cache_dir) / "side_maps"
        self._compute = compute  # callable(bgr) -> uint8 H×W×3 or None; default face.side_map_for_image
        self.counts = {"beside": 0, "cached": 0, "computed": 0, "no_face": 0}

    def _cache_path(self, image_path: Path) -> Path:
        stat = image_path.stat()
        key = f"{image_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return self.cache_dir / (hashlib.sha1(key.encode()).hexdigest() + ".png")

    def _compute_fn(self):
        if self._compute is None:
            import face
            if not hasattr(face, "side_map_for_image"):
                raise RuntimeError("face.side_map_for_image is not available: images without a "
                                   "NAME.side.png beside them cannot get a side map")
            self._compute = face.side_map_for_image
        return self._compute

    def locate(self, image_path) -> Path | None:
        """Path of an existing side map for this image, or None when it must be computed."""
        image_path = Path(image_path)
        beside = side_map_beside(image_path)
        if beside.is_file():
            return beside
        cached = self._cache_path(image_path)
        return cached if cached.is_file() else None

    def ensure(self, image_path, image: np.ndarray | None = None) -> Path:
        """Path of this image's side map, computing and caching it when there is none yet."""
        image_path = Path(image_path)
        found = self.locate(image_path)
        if found is not None:
            self.counts["beside" if found.name.endswith(SIDE_MAP_SUFFIX) else "cached"] += 1
            return found
        bgr = read_image(image_path) if image is None else image
        side = self._compute_fn()(bgr)
        cached = self._cache_path(image_path)
        cached.parent.mkdir(parents=True, exist_ok=True)
        if side is None:
            self.counts["no_face"] += 1
            side = np.zeros_like(bgr)
            cached.with_suffix(".noface").touch()
        else:
            self.counts["computed"] += 1
        tmp = cached.with_name(cached.stem + ".tmp.png")
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(side, dtype=np.uint8)):
            raise OSError(f"cannot write side map cache {tmp}")
        tmp.replace(cached)
        return cached

    def prepare(self, samples, progress: bool = True) -> list[tuple[str, str]]:
        """Make sure every sample has a side map before training; returns (path, reason) of the
        images that could not be read (they are skipped again, and counted, when loaded)."""
        from tqdm import tqdm
        bad = []
        missing = [s for s in samples if self.locate(s.path) is None]
        for sample in tqdm(missing, desc="side maps", disable=not progress or not missing, unit="img"):
            try:
                self.ensure(sample.path)
            except ValueError as err:  # unreadable image: read_image names the file
                bad.append((str(sample.path), str(err)))
        return bad


class ImageDataset(Dataset):
    """Items are dicts: image (3×S×S float32 in [-1, 1], BGR as everywhere), side (same, when
    side maps are used), label (int, -1 when unknown), index; with pairs="frontal" also pair (the
    image's NAME.pair.png, zeros where it has none) and has_pair (1.0 or 0.0); with pairs="expression"
    pair 7×3×S×S (`pairs_of`: in EXPRESSIONS order, zeros where there is none) and has_pair (7).
    A rotate-and-render render's frontal pair (train.renders.write_turned) counts `turned_pair_weight`
    in has_pair instead of 1: how much the pair term trusts a turned render's pair against a frontal one.
    A bad file gives {"bad": (path, reason), "index": i} instead of raising.

    Keys are an int index, or (index, flip) or (index, flip, crop) from `StepBatchSampler`: crop is
    three uniform numbers that place a random square crop (`crop_box`), cut from every array alike.
    """

    def __init__(self, samples: list[Sample], size: int, side_maps: SideMaps | None = None, pairs: str | None = None,
                 turned_pair_weight: float = 1.0):
        if not samples:
            raise ValueError("a dataset needs at least one sample")
        if pairs is not None and pairs not in PAIR_KINDS:
            raise ValueError(f"pairs must be one of {PAIR_KINDS} or None, got {pairs!r}")
        self.samples = list(samples)
        self.size = int(size)
        self.side_maps = side_maps
        self.pairs = pairs
        self.turned_pair_weight = float(turned_pair_weight)

    def __len__(self):
        return len(self.samples)

    def load(self, index: int, flip: bool = False, crop=None) -> dict:
        sample = self.samples[index]
        image = square_resize(read_image(sample.path), self.size)
        item = {"label": -1 if sample.label is None else int(sample.label), "index": index}
        arrays = {"image": image}
        if self.side_maps is not None:
            side_path = self.side_maps.locate(sample.path) or self.side_maps.ensure(sample.path)
            arrays["side"] = square_resize(read_image(side_path), self.size)
        if self.pairs:
            paths = pairs_of(sample, self.pairs)
            pair = [np.zeros_like(image) if path is None else square_resize(read_image(path), self.size)
                    for path in paths]
            has = torch.tensor([path is not None for path in paths], dtype=torch.float32)
            if self.pairs == "frontal" and is_turned(sample.path):
                has = has * self.turned_pair_weight
            arrays["pair"], item["has_pair"] = (pair[0], has[0]) if self.pairs == "frontal" else (np.stack(pair), has)
        box = crop_box(self.size, crop) if crop is not None else None
        for name, array in arrays.items():
            if box is not None:
                array = crop_square(array, *box)
            if flip:
                array = array[..., ::-1, :]   # the width axis of an H×W×3 image or of a stack of them
            item[name] = torch.from_numpy(to_network(array))
        return item

    def __getitem__(self, key):
        index, *how = key if isinstance(key, tuple) else (key,)
        try:
            return self.load(index, *how)
        except (ValueError, OSError, cv2.error) as err:
            return {"bad": (str(self.samples[index].path), str(err)), "index": index}


def generator_input(batch: dict) -> torch.Tensor:
    """The generator's 6-channel input: image and side map, N×6×H×W."""
    return torch.cat([batch["image"], batch["side"]], dim=1)


def collate_skipping_bad(items: list[dict]) -> dict:
    """Stack the good items; bad ones go to batch["bad"] as (path, reason). A batch with no good
    item has batch["size"] == 0 and no tensors."""
    good = [item for item in items if "bad" not in item]
    batch = {"bad": [item["bad"] for item in items if "bad" in item], "size": len(good)}
    if good:
        for key in good[0]:
            values = [item[key] for item in good]
            batch[key] = torch.stack(values) if torch.is_tensor(values[0]) else torch.tensor(values)
    return batch


def read_generator_batch(dataset: "ImageDataset", keys, device, logger, what: str = "") -> tuple:
    """(the generator's input on `device`, or None when no file of the batch could be read; the batch)
    for dataset[keys], outside a DataLoader; each unreadable file is logged and left in batch["bad"]."""
    batch = collate_skipping_bad([dataset[k] for k in keys])
    for path, reason in batch["bad"]:
        logger.warning("%sskipping unreadable file %s (%s)", what, path, reason)
    return (generator_input(batch).to(device) if batch["size"] else None), batch


def _round_generator(seed: int, stream: int, round_index: int) -> torch.Generator:
    # Python's hash of an int tuple is the same in every process and run (no string hashing).
    return torch.Generator().manual_seed(hash((int(seed), int(stream), int(round_index))) & 0x7FFF_FFFF_FFFF_FFFF)


class StepBatchSampler:
    """Batches for steps [start_step, start_step + num_steps), for one process of `world_size`.

    The index stream is an endless chain of permutations of the dataset, each drawn from
    (seed, stream, round) alone; global step s, rank r takes positions
    [(s·world + r)·B, (s·world + r + 1)·B). So resuming at step k and running on N processes
    both see exactly what one straight run sees, and ranks never share a position.
    With flip=True every position also carries a horizontal-flip coin from the same generator; with
    crop=True, after them, three numbers that place a random crop (drawn only then: runs without crops
    draw what they always drew).
    """

    def __init__(self, num_samples: int, batch_size: int, *, seed: int = 0, stream: int = 0,
                 rank: int = 0, world_size: int = 1, start_step: int = 0, num_steps: int,
                 flip: bool = False, crop: bool = False):
        if num_samples < 1 or batch_size < 1:
            raise ValueError(f"need at least one sample and batch size >= 1, got {num_samples}, {batch_size}")
        self.n, self.batch_size, self.seed, self.stream = num_samples, batch_size, seed, stream
        self.rank, self.world_size = rank, world_size
        self.start_step, self.num_steps, self.flip, self.crop = start_step, num_steps, flip, crop
        self._round = (None, None, None, None)

    def steps_per_epoch(self) -> int:
        return max(1, -(-self.n // (self.batch_size * self.world_size)))

    def _permutation(self, round_index: int):
        if self._round[0] != round_index:
            generator = _round_generator(self.seed, self.stream, round_index)
            order = torch.randperm(self.n, generator=generator).tolist()
            flips = (torch.rand(self.n, generator=generator) < 0.5).tolist()
            crops = torch.rand(self.n, 3, generator=generator).tolist() if self.crop else None
            self._round = (round_index, order, flips, crops)
        return self._round[1:]

    def _key(self, index: int, flip: bool, crop) -> tuple:
        """A dataset key: (index, flip), and the crop's three numbers when crops are on."""
        key = (index, flip and self.flip)
        return key + (tuple(crop),) if self.crop else key

    def batch_for_step(self, step: int) -> list:
        first = (step * self.world_size + self.rank) * self.batch_size
        keys = []
        for position in range(first, first + self.batch_size):
            order, flips, crops = self._permutation(position // self.n)
            j = position % self.n
            keys.append(self._key(order[j], bool(flips[j]), crops[j] if crops else None))
        return keys

    def __iter__(self):
        for step in range(self.start_step, self.start_step + self.num_steps):
            yield self.batch_for_step(step)

    def __len__(self):
        return self.num_steps


def make_loader(dataset: Dataset, sampler: StepBatchSampler, workers: int = 0, pin_memory: bool = False,
                worker_init_fn=None) -> DataLoader:
    """A DataLoader that follows `sampler` and drops bad files into batch["bad"]."""
    return DataLoader(dataset, batch_sampler=sampler, num_workers=workers, collate_fn=collate_skipping_bad,
                      pin_memory=pin_memory, persistent_workers=False, worker_init_fn=worker_init_fn)
