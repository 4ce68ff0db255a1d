import random
import re
import zipfile

import numpy as np
import pytest
import torch
from torch import nn

from tiny_checkpoints import write_over_the_middle
from train.checkpoint import (DIGEST_RECORD, CheckpointError, capture_rng, checkpoint_path, config_mismatches,
                              load_checkpoint, load_newest_good, load_state_checked, restore_rng, save_checkpoint)


def _save(tmp_path, model, **kw):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0 - 0.1 * s)
    model(torch.ones(2, 3)).sum().backward()
    opt.step()
    sched.step()
    return save_checkpoint(checkpoint_path(tmp_path), kind="classifier", config={"width": 3, "classes": ["a"]},
                           models={"net": model}, optimizers={"net": opt}, schedulers={"net": sched},
                           step=7, epoch=1, **kw), opt


def test_checkpoint_round_trips_with_weights_only_and_leaves_no_temp_file(tmp_path):
    model = nn.Linear(3, 2)
    path, opt = _save(tmp_path, model)
    state = torch.load(path, weights_only=True)
    assert state["kind"] == "classifier" and state["step"] == 7 and state["epoch"] == 1
    assert torch.equal(state["models"]["net"]["weight"], model.weight)
    assert state["optimizers"]["net"]["state"][0]["exp_avg"].shape == (2, 3)
    assert state["schedulers"]["net"]["last_epoch"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]
    assert load_checkpoint(tmp_path)["step"] == 7  # a run folder finds its last checkpoint


def test_a_checkpoint_of_a_former_kind_name_loads_under_todays_name(tmp_path):
    """Checkpoints once named UIT/CGIT runs "exprada-uit"/"exprada-cgit"; they are the model kinds now."""
    path, _ = _save(tmp_path, nn.Linear(3, 2))
    state = torch.load(path, weights_only=True)
    state["kind"] = "exprada-cgit"
    torch.save(state, path)
    assert load_checkpoint(path)["kind"] == "cgit_generator"


def test_rng_states_restore_every_generator():
    state = capture_rng()
    before = (torch.rand(3), np.random.rand(3), random.random())
    restore_rng(state)
    after = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(before[0], after[0]) and np.array_equal(before[1], after[1]) and before[2] == after[2]


def test_bad_configs_and_files_are_clear_errors(tmp_path):
    with pytest.raises(TypeError, match="JSON"):
        save_checkpoint(tmp_path / "x.pt", kind="classifier", config={"bad": object()}, models={})
    with pytest.raises(ValueError, match="kind"):
        save_checkpoint(tmp_path / "x.pt", kind="gan", config={}, models={})
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="junk.pt: not a loadable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="missing kind"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "none.pt")
    (tmp_path / "classifier.onnx").write_bytes(b"\x08\x07onnx")   # what a user has at hand: the shipped models
    with pytest.raises(CheckpointError, match="classifier.onnx: an exported model, not a training checkpoint"):
        load_checkpoint(tmp_path / "classifier.onnx")


def test_state_that_does_not_fit_names_the_mismatch():
    with pytest.raises(CheckpointError, match=r"weight: checkpoint \(2, 3\) vs network \(4, 3\)"):
        load_state_checked(nn.Linear(3, 4), nn.Linear(3, 2).state_dict(), "model net")
    with pytest.raises(CheckpointError, match="missing from the checkpoint"):
        load_state_checked(nn.Linear(3, 2), {"weight": torch.zeros(2, 3)}, "model net")
    assert config_mismatches({"width": 8, "mode": "uit"}, {"width": 16, "mode": "uit"}, ["width", "mode"]) == \
        ["width: checkpoint 8, now 16"]


class RunsCode:
    """Unpickling this creates `marker`: the payload of a crafted file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


def _save_steps(tmp_path, steps, keep=3):
    """last.pt (and its older copies) of a network big enough that 4 KiB is only part of it."""
    for step in steps:
        path = save_checkpoint(checkpoint_path(tmp_path), kind="classifier", config={}, step=step, keep=keep,
                               models={"net": nn.Linear(64, 64)})
    return path


def test_a_checkpoint_carries_the_sha256_of_its_contents_and_is_checked_on_load(tmp_path):
    path = _save_steps(tmp_path, [1])
    with zipfile.ZipFile(path) as archive:
        assert sum(name.endswith("/" + DIGEST_RECORD) for name in archive.namelist()) == 1
        records = {info.filename: archive.read(info) for info in archive.infolist()}
    assert load_checkpoint(path)["notes"] == []
    # A weight changed, its zip CRC-32 rewritten to match (what a tool or a tamperer would leave).
    weights = next(name for name in records if name.endswith("/data/0"))
    records[weights] = bytes(len(records[weights]))
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in records.items():
            archive.writestr(name, data)
    with pytest.raises(CheckpointError, match="last.pt: damaged: its contents differ from the sha256 saved with it"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["middle", "truncated"])
def test_a_damaged_checkpoint_is_refused(tmp_path, damage):
    path = _save_steps(tmp_path, [1])
    if damage == "middle":
        write_over_the_middle(path)
    else:
        path.write_bytes(path.read_bytes()[:-5000])
    with pytest.raises(CheckpointError, match=r"last.pt: (damaged|not a loadable checkpoint)"):
        load_checkpoint(path)


def test_a_checkpoint_saved_before_checksums_loads_with_a_note(tmp_path):
    path = _save_steps(tmp_path, [1])
    torch.save(torch.load(path, weights_only=True), path)
    state = load_checkpoint(path)
    assert state["step"] == 1
    assert state["notes"] == [f"{path}: no sha256 inside (saved before checkpoints carried one): loaded unverified"]


def test_a_checkpoint_whose_pickle_would_run_code_is_refused_without_running_it(tmp_path):
    """weights_only=True everywhere: even a checkpoint whose sha256 matches cannot run code."""
    marker = tmp_path / "code_ran"
    path = save_checkpoint(tmp_path / "crafted.pt", kind="classifier", config={}, models={},
                           extra={"payload": RunsCode(marker)})
    with pytest.raises(CheckpointError, match=r"crafted.pt: not a loadable checkpoint \(UnpicklingError"):
        load_checkpoint(path)
    assert not marker.exists()
    torch.load(path, weights_only=False)   # what weights_only=True keeps out
    assert marker.exists()


def test_the_last_checkpoints_are_kept_newest_first(tmp_path):
    path = _save_steps(tmp_path, [1, 2, 3, 4])
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.1.pt", "last.2.pt", "last.pt"]
    assert [load_checkpoint(path.with_name(name))["step"] for name in ("last.pt", "last.1.pt", "last.2.pt")] == \
        [4, 3, 2]
    assert load_newest_good(tmp_path)["notes"] == []   # a run folder finds them too


def test_resume_takes_the_newest_good_copy_and_says_which_and_why(tmp_path):
    path = _save_steps(tmp_path, [1, 2, 3])
    write_over_the_middle(path)
    state = load_newest_good(path)
    assert state["step"] == 2 and state["path"] == str(path.with_name("last.1.pt"))
    assert len(state["notes"]) == 1 and re.fullmatch(
        rf"{re.escape(str(path))}: (damaged|not a loadable checkpoint).*: resuming from the older copy last.1.pt "
        r"\(step 2\)", state["notes"][0])
    path.unlink()   # as a save interrupted between moving last.pt and writing the new one leaves it
    path.with_name("last.1.pt").write_bytes(path.with_name("last.2.pt").read_bytes()[:1000])
    state = load_newest_good(path)
    assert state["step"] == 1 and "last.pt: no such checkpoint" in state["notes"][0]
    assert "last.1.pt: not a loadable checkpoint" in state["notes"][0]
    path.with_name("last.2.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"^no usable checkpoint: .*last.pt: no such checkpoint; "
                                              r".*last.1.pt: not a loadable .*; .*last.2.pt: not a loadable") as info:
        load_newest_good(tmp_path)
    assert "\n" not in str(info.value)
