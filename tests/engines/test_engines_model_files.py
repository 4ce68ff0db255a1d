"""Loading a model file runs no code of the file's: a .pt2 loads only when it matches the digest
export wrote beside it (torch.export.load unpickles), an .onnx with a digest is checked against it,
and ONNX external data outside the model's folder is refused."""
import contextlib
import io
import os
import re
import shutil
import subprocess
import zipfile

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

import engines
from engines.contract import digest_path, write_digest
from train.export import export_program


class RunsCode:
    """Unpickling this creates `marker`: the payload of a crafted model file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


@pytest.fixture
def program(tmp_path, tiny_classifier):
    return export_program(tiny_classifier, "classifier", tmp_path / "classifier.pt2", image_size=32)


def _crafted(program, marker):
    """A copy of `program` whose sample inputs are a pickle that runs code: torch.export.load's
    safe load of them fails and it retries with full unpickling."""
    payload = io.BytesIO()
    torch.save(RunsCode(marker), payload)
    crafted = program.with_name("crafted.pt2")
    with zipfile.ZipFile(program) as source, zipfile.ZipFile(crafted, "w") as target:
        for info in source.infolist():
            is_inputs = info.filename.endswith("/data/sample_inputs/model.pt")
            target.writestr(info.filename, payload.getvalue() if is_inputs else source.read(info))
    return crafted


def test_export_writes_a_digest_in_sha256sum_format(program, generator_onnx):
    for model in (program, generator_onnx):
        digest, name = digest_path(model).read_text().split()
        assert re.fullmatch("[0-9a-f]{64}", digest) and name == model.name
    if shutil.which("sha256sum"):
        subprocess.run(["sha256sum", "--check", "--quiet", digest_path(program).name], cwd=program.parent, check=True)


def test_a_crafted_program_is_refused_before_anything_unpickles_it(program, tmp_path):
    marker = tmp_path / "code_ran"
    crafted = _crafted(program, marker)
    refusal = f"{crafted}: refused: a .pt2 program can run code while it loads, and it has no crafted.pt2.sha256"
    with pytest.raises(engines.EngineFileError, match=re.escape(refusal)) as info:
        engines.load(crafted, backend="torch")
    assert "\n" not in str(info.value) and "`sha256sum crafted.pt2 > crafted.pt2.sha256`" in str(info.value)
    shutil.copy(digest_path(program), digest_path(crafted))   # the digest of the program it replaced
    with pytest.raises(engines.EngineFileError, match=r"crafted.pt2: refused: its sha256 differs from the one"):
        engines.load(crafted, backend="torch")
    assert engines.ModelInfo.of(crafted).kind == "classifier"   # metadata is read from the zip, unpickled nothing
    assert not marker.exists()
    # What the digest check stands in front of: torch.export.load itself runs the payload.
    with contextlib.suppress(Exception):   # it fails, once the payload has run
        torch.export.load(crafted)
    assert marker.exists()


def test_a_program_without_a_digest_loads_once_one_is_recorded(program):
    engines.load(program, backend="torch")
    digest_path(program).unlink()
    with pytest.raises(engines.EngineFileError, match="no classifier.pt2.sha256"):
        engines.load(program, backend="torch")
    if not shutil.which("sha256sum"):
        pytest.skip("no sha256sum here")
    subprocess.run("sha256sum classifier.pt2 > classifier.pt2.sha256", shell=True, cwd=program.parent, check=True)
    assert engines.load(program, backend="torch").metadata["exprada.kind"] == "classifier"


def test_a_damaged_program_or_digest_file_is_named(program):
    program.write_bytes(program.read_bytes()[:-100])
    with pytest.raises(engines.EngineFileError, match="classifier.pt2: refused: its sha256 differs"):
        engines.load(program, backend="torch")
    write_digest(program)   # the digest of the damaged bytes: they reach torch, which fails
    with pytest.raises(engines.EngineFileError, match="torch.export program .*classifier.pt2 could not be loaded"):
        engines.load(program, backend="torch")
    digest_path(program).write_text("not a digest\n")
    with pytest.raises(engines.EngineFileError, match="classifier.pt2.sha256: not a sha256 digest file"):
        engines.load(program, backend="torch")


def test_an_onnx_model_is_checked_against_its_digest_when_it_has_one(tmp_path, generator_onnx):
    copy = tmp_path / "uit.onnx"
    copy.write_bytes(generator_onnx.read_bytes())
    engines.load(copy)   # no digest (e.g. a calibrated model): loads, ONNX runs no code
    shutil.copy(digest_path(generator_onnx), digest_path(copy))
    engines.load(copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 1
    copy.write_bytes(data)
    with pytest.raises(engines.EngineFileError, match="uit.onnx: refused: its sha256 differs"):
        engines.load(copy)


@pytest.mark.parametrize("escape", ["parent", "symlink", "absolute"])
def test_onnx_external_data_outside_the_model_folder_is_refused(tmp_path, escape):
    outside = tmp_path / "secret.bin"
    np.arange(4, dtype=np.float32).tofile(outside)
    folder = tmp_path / "models"
    folder.mkdir()
    location = {"parent": "../secret.bin", "symlink": "link.bin", "absolute": str(outside)}[escape]
    if escape == "symlink":
        os.symlink(outside, folder / "link.bin")
    weight = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4], data_location=TensorProto.EXTERNAL)
    for key, value in (("location", location), ("offset", "0"), ("length", "16")):
        weight.external_data.add(key=key, value=value)
    x, y = (helper.make_tensor_value_info(name, TensorProto.FLOAT, [4]) for name in ("x", "y"))
    graph = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g", [x], [y], [weight])
    model = folder / "model.onnx"
    model.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    with pytest.raises(engines.EngineFileError, match=re.escape(f"ONNX model {model} could not be loaded")) as info:
        engines.load(model)
    assert "external data" in str(info.value).lower()
