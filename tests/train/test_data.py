from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch

from tiny_data import write_images
from face.imageio import read_image, to_network
from train.data import (ImageDataset, SideMaps, StepBatchSampler, collate_skipping_bad, crop_box, crop_square, make_loader,
                        square_resize)
from train.sampling import WeightedStepBatchSampler
from train.datasets import Sample, is_turned
from train.datasets.folder import index_unlabelled_folder
from train.datasets.pairs import EXPRESSION_PAIRS


def test_items_are_network_tensors_with_side_maps_and_flip_mirrors_both(tmp_path):
    write_images(tmp_path / "d", 2, 40, seed=0)
    ds = ImageDataset(index_unlabelled_folder(tmp_path / "d"), size=32, side_maps=SideMaps(tmp_path / "cache"))
    item, flipped = ds[(0, False)], ds[(0, True)]
    assert item["image"].shape == (3, 32, 32) and item["side"].shape == (3, 32, 32)
    assert item["image"].dtype == torch.float32 and -1 <= item["image"].min() and item["image"].max() <= 1
    assert torch.equal(flipped["image"], item["image"].flip(-1)) and torch.equal(flipped["side"], item["side"].flip(-1))
    assert item["label"] == -1
    assert not (tmp_path / "cache").exists()  # maps beside the images were used, nothing cached


def test_a_crop_key_cuts_image_and_side_map_alike_and_scales_them_back(tmp_path):
    write_images(tmp_path / "d", 1, 40, seed=0)
    samples = index_unlabelled_folder(tmp_path / "d")
    ds = ImageDataset(samples, size=32, side_maps=SideMaps(tmp_path / "cache"))
    draw = (0.0, 1.0 - 1e-9, 0.5)                  # the smallest square (80 %), at the bottom, centred across
    assert crop_box(32, draw) == (26, 6, 3) and crop_box(32, (1.0 - 1e-9, 0.5, 0.5))[0] == 32
    item, cropped, both = ds[(0, False)], ds[(0, False, draw)], ds[(0, True, draw)]
    expected = crop_square(square_resize(read_image(samples[0].path), 32), *crop_box(32, draw))
    assert torch.equal(cropped["image"], torch.from_numpy(to_network(expected)))
    assert cropped["side"].shape == (3, 32, 32) and not torch.equal(cropped["side"], item["side"])
    assert torch.equal(both["image"], cropped["image"].flip(-1)) and torch.equal(both["side"], cropped["side"].flip(-1))


def test_crops_are_drawn_after_the_flips_so_runs_without_them_draw_as_before():
    for make in (lambda **kw: StepBatchSampler(50, 8, seed=3, num_steps=1, flip=True, **kw),
                 lambda **kw: WeightedStepBatchSampler(torch.ones(50, dtype=torch.double), 8, seed=3, num_steps=1,
                                                       flip=True, **kw)):
        plain, cropped = make().batch_for_step(4), make(crop=True).batch_for_step(4)
        assert [key[:2] for key in cropped] == plain and all(len(key) == 2 for key in plain)
        assert all(len(key[2]) == 3 and all(0 <= u < 1 for u in key[2]) for key in cropped)
        assert len({key[2] for key in cropped}) == 8   # a crop of its own for every position


def test_frontal_pairs_load_beside_their_renders_flip_with_them_and_are_never_samples(tmp_path):
    paths = write_images(tmp_path / "d", 3, 40, seed=0)
    crop = np.zeros((40, 40, 3), np.uint8)
    crop[5:30, 10:20] = 200                        # asymmetric, so a flip shows
    cv2.imwrite(str(paths[1].with_name(paths[1].stem + ".pair.png")), crop)
    samples = index_unlabelled_folder(tmp_path / "d")
    assert [s.path for s in samples] == paths       # the pair is not listed as an image
    ds = ImageDataset(samples, size=32, side_maps=SideMaps(tmp_path / "cache"), pairs="frontal")
    without, with_pair, flipped = ds[(0, False)], ds[(1, False)], ds[(1, True)]
    assert without["has_pair"].item() == 0.0 and torch.all(without["pair"] == -1)   # black: zeros in [-1, 1]
    assert with_pair["has_pair"].item() == 1.0 and with_pair["pair"].shape == (3, 32, 32)
    assert with_pair["pair"].max() > 0 and torch.equal(flipped["pair"], with_pair["pair"].flip(-1))
    assert "pair" not in ImageDataset(samples, size=32, side_maps=SideMaps(tmp_path / "cache"))[1]


def test_a_turned_renders_pair_counts_the_turned_pair_weight(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    face = np.full((40, 40, 3), 90, np.uint8)
    for name in ("t00001", "t00001_turn+30", "t00001_turn-30"):   # as train synth --turn-pairs 30 names them
        cv2.imwrite(str(folder / f"{name}.png"), face)
        cv2.imwrite(str(folder / f"{name}.pair.png"), face)
    samples = index_unlabelled_folder(folder)
    weights = {s.path.stem: ImageDataset(samples, size=32, pairs="frontal", turned_pair_weight=0.25)[i]["has_pair"].item()
               for i, s in enumerate(samples)}
    assert weights == {"t00001": 1.0, "t00001_turn+30": 0.25, "t00001_turn-30": 0.25}
    assert ImageDataset(samples, size=32, pairs="frontal")[1]["has_pair"].item() == 1.0   # by default as any pair
    assert not is_turned("cam_turnout.png") and not is_turned("t00001_turn.png")   # the mark is _turn±D


def test_expression_pairs_load_as_a_stack_in_expression_order_and_flip_with_their_face(tmp_path):
    from face.expressions import EXPRESSIONS

    paths = write_images(tmp_path / "d", 2, 40, seed=0)
    crop = np.zeros((40, 40, 3), np.uint8)
    crop[5:30, 10:20] = 200                        # asymmetric, so a flip shows
    cv2.imwrite(str(paths[0].with_name(paths[0].stem + ".as-surprise.png")), crop)
    samples = index_unlabelled_folder(tmp_path / "d")
    assert [s.path for s in samples] == paths       # the pair is not listed as an image
    ds = ImageDataset(samples, size=32, side_maps=SideMaps(tmp_path / "cache"), pairs="expression")
    item, flipped, none = ds[(0, False)], ds[(0, True)], ds[(1, False)]
    surprise = EXPRESSIONS.index("surprise")
    assert item["pair"].shape == (len(EXPRESSIONS), 3, 32, 32)
    assert item["has_pair"].tolist() == [float(i == surprise) for i in range(len(EXPRESSIONS))]
    assert item["pair"][surprise].max() > 0 and torch.all(item["pair"][:surprise] == -1)
    assert torch.equal(flipped["pair"], item["pair"].flip(-1)) and torch.equal(flipped["image"], item["image"].flip(-1))
    assert none["has_pair"].sum().item() == 0
    # pairs a dataset's structure named (KDEF: the same face in another expression) are read instead of
    # files beside the image; one that is gone counts as none
    named = replace(samples[0], meta={EXPRESSION_PAIRS: [str(paths[1]), str(tmp_path / "gone.png"), *[None] * 5]})
    from_names = ImageDataset([named], size=32, side_maps=SideMaps(tmp_path / "cache"), pairs="expression")[0]
    assert from_names["has_pair"].tolist() == [1.0] + [0.0] * (len(EXPRESSIONS) - 1)
    assert torch.equal(from_names["pair"][0], none["image"])
    with pytest.raises(ValueError, match="pairs must be one of"):
        ImageDataset(samples, size=32, pairs=True)


def test_missing_side_maps_are_computed_once_into_the_cache_not_the_dataset(tmp_path):
    write_images(tmp_path / "d", 2, 32, seed=0, side=False)
    calls = []

    def fake_face(bgr):  # stands in for face.side_map_for_image: first image has a face, second not
        calls.append(bgr.shape)
        return np.full_like(bgr, 200) if len(calls) == 1 else None

    side_maps = SideMaps(tmp_path / "cache", compute=fake_face)
    samples = index_unlabelled_folder(tmp_path / "d")
    assert side_maps.prepare(samples, progress=False) == []
    assert side_maps.counts["computed"] == 1 and side_maps.counts["no_face"] == 1
    ds = ImageDataset(samples, size=32, side_maps=side_maps)
    assert torch.all(ds[0]["side"] > 0.5) and torch.all(ds[1]["side"] == -1)  # zero map for no face
    side_maps.prepare(samples, progress=False)
    assert len(calls) == 2  # cached: not computed again
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["img_000.png", "img_001.png"]


def test_corrupt_file_is_skipped_and_reported_not_raised(tmp_path):
    paths = write_images(tmp_path / "d", 3, 32, seed=0)
    paths[1].write_bytes(b"not a png")
    ds = ImageDataset(index_unlabelled_folder(tmp_path / "d"), size=32, side_maps=SideMaps(tmp_path / "c"))
    batch = collate_skipping_bad([ds[i] for i in range(3)])
    assert batch["size"] == 2 and batch["image"].shape == (2, 3, 32, 32)
    assert len(batch["bad"]) == 1 and "img_001.png" in batch["bad"][0][0] and "not a readable image" in batch["bad"][0][1]
    empty = collate_skipping_bad([ds[1]])
    assert empty["size"] == 0 and "image" not in empty


def test_step_sampler_resumes_exactly_and_shards_without_overlap():
    straight = list(StepBatchSampler(10, 3, seed=5, num_steps=8, flip=True))
    resumed = list(StepBatchSampler(10, 3, seed=5, num_steps=4, flip=True)) + \
        list(StepBatchSampler(10, 3, seed=5, start_step=4, num_steps=4, flip=True))
    assert straight == resumed
    first_round = [k for batch in straight for k, _ in batch][:10]
    assert sorted(first_round) == list(range(10))  # each round is a permutation
    assert any(f for batch in straight for _, f in batch) and not all(f for batch in straight for _, f in batch)
    rank0 = list(StepBatchSampler(12, 3, seed=1, rank=0, world_size=2, num_steps=2))
    rank1 = list(StepBatchSampler(12, 3, seed=1, rank=1, world_size=2, num_steps=2))
    one = list(StepBatchSampler(12, 6, seed=1, num_steps=2))
    assert [a + b for a, b in zip(rank0, rank1)] == one  # two ranks together = one process, double batch
    assert list(StepBatchSampler(12, 3, seed=2, num_steps=1)) != list(StepBatchSampler(12, 3, seed=1, num_steps=1))


def test_loader_follows_the_sampler(tmp_path):
    write_images(tmp_path / "d", 4, 32, seed=0)
    ds = ImageDataset(index_unlabelled_folder(tmp_path / "d"), size=32, side_maps=SideMaps(tmp_path / "c"))
    batches = list(make_loader(ds, StepBatchSampler(4, 2, seed=0, num_steps=3)))
    assert [b["size"] for b in batches] == [2, 2, 2]


def test_square_resize_crops_the_centre():
    image = np.zeros((40, 20, 3), np.uint8)
    image[10:30] = 255
    out = square_resize(image, 10)
    assert out.shape == (10, 10, 3) and out.min() == 255


def test_side_maps_from_the_real_face_stage_for_a_photo_and_zero_for_no_face(tmp_path):
    pytest.importorskip("mediapipe", reason="the face stage needs mediapipe")
    from skimage import data as photos
    astronaut = cv2.cvtColor(photos.astronaut(), cv2.COLOR_RGB2BGR)[0:256, 100:356]  # her face, 256²
    cv2.imwrite(str(tmp_path / "face.png"), astronaut)
    cv2.imwrite(str(tmp_path / "wall.png"), np.full((128, 128, 3), 90, np.uint8))
    side_maps = SideMaps(tmp_path / "cache")
    samples = [Sample(tmp_path / "face.png"), Sample(tmp_path / "wall.png")]
    assert side_maps.prepare(samples, progress=False) == []
    assert side_maps.counts == {"beside": 0, "cached": 0, "computed": 1, "no_face": 1}
    ds = ImageDataset(samples, size=64, side_maps=side_maps)
    face_side, wall_side = ds[0]["side"], ds[1]["side"]
    assert face_side.max() > 0.5 and (face_side > -0.5).float().mean() < 0.9  # a heatmap, not a flat image
    assert torch.all(wall_side == -1)
