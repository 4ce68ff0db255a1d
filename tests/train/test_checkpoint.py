import random

import numpy as np
import pytest
import torch
from torch import nn

from train.checkpoint import (CheckpointError, capture_rng, checkpoint_path, config_mismatches, load_checkpoint,
                              load_state_checked, restore_rng, save_checkpoint)


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


def test_state_that_does_not_fit_names_the_mismatch():
    with pytest.raises(CheckpointError, match=r"weight: checkpoint \(2, 3\) vs network \(4, 3\)"):
        load_state_checked(nn.Linear(3, 4), nn.Linear(3, 2).state_dict(), "model net")
    with pytest.raises(CheckpointError, match="missing from the checkpoint"):
        load_state_checked(nn.Linear(3, 2), {"weight": torch.zeros(2, 3)}, "model net")
    assert config_mismatches({"width": 8, "mode": "uit"}, {"width": 16, "mode": "uit"}, ["width", "mode"]) == \
        ["width: checkpoint 8, now 16"]
