"""Each dataset loader on a tiny tree in that dataset's own layout, written here."""
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from face.expressions import EXPRESSIONS
from train.data import ImageDataset
from train.datasets import label_counts
from train.datasets.bu3dfe import index_bu3dfe, parse_bu3dfe_name
from train.datasets.csv_list import index_csv
from train.datasets.kdef import index_kdef, parse_kdef_name
from train.datasets.labels import label_index
from train.datasets.mmi import index_mmi, peak_frames
from train.datasets.pairs import EXPRESSION_PAIRS, with_expression_pairs
from train.datasets.sources import detect_format, load_samples, wants_face_crop

E = EXPRESSIONS.index


def _image(path, value=128, size=(24, 20), dtype=np.uint8, channels=3):
    path.parent.mkdir(parents=True, exist_ok=True)
    shape = size if channels == 1 else (*size, channels)
    assert cv2.imwrite(str(path), np.full(shape, value, dtype))
    return path


def test_label_aliases_per_dataset_and_a_clear_error_for_unknown_names():
    assert label_index("Happy") == E("happiness") and label_index("ANGRY") == E("anger")
    assert label_index("AF", "kdef") == E("fear") and label_index("FE", "bu3dfe") == E("fear")
    assert label_index("6", "mmi") == E("surprise")
    with pytest.raises(ValueError, match=r"x\.csv:3: unknown generic label 'contempt'"):
        label_index("contempt", where="x.csv:3")
    with pytest.raises(ValueError, match="unknown kdef label 'XX'"):
        label_index("XX", "kdef")


def test_kdef_names_decode_session_sex_subject_expression_and_angle(tmp_path):
    info = parse_kdef_name(tmp_path / "AF01ANS.JPG")
    assert info == {"session": "A", "sex": "F", "subject": "F01", "label": E("anger"), "angle": "S", "yaw": 0}
    assert parse_kdef_name(tmp_path / "BM35SUHR.jpg")["yaw"] == 45
    assert parse_kdef_name(tmp_path / "notes.jpg") is None
    with pytest.raises(ValueError, match="AM02XXS.JPG: unknown kdef label 'XX'"):
        parse_kdef_name(tmp_path / "AM02XXS.JPG")


def test_kdef_tree_selects_views_and_sessions_and_counts_foreign_files(tmp_path, caplog):
    for session in "AB":
        for person in ("F01", "M02"):
            for code in ("AF", "HA", "NE"):
                for angle in ("S", "HL", "FR"):
                    _image(tmp_path / f"{session}{person}" / f"{session}{person}{code}{angle}.JPG")
    _image(tmp_path / "readme_photo.jpg")
    with caplog.at_level(logging.WARNING):
        everything = index_kdef(tmp_path)
    assert len(everything) == 2 * 2 * 3 * 3 and "1 images without a KDEF name" in caplog.text
    straight = index_kdef(tmp_path, angles="S", sessions="A")
    assert len(straight) == 2 * 3 and {s.meta["angle"] for s in straight} == {"S"}
    assert {s.subject for s in straight} == {"F01", "M02"}  # both sessions of a person: one subject
    assert label_counts(straight) == {"fear": 2, "happiness": 2, "neutral": 2}
    with pytest.raises(ValueError, match=r"unknown KDEF angle\(s\) \['XX'\]"):
        index_kdef(tmp_path, angles="S,XX")
    assert detect_format(tmp_path) == "kdef" and wants_face_crop("kdef", {})  # whole portraits


def test_bu3dfe_names_give_subject_expression_intensity_and_pose(tmp_path):
    assert parse_bu3dfe_name(tmp_path / "F0001_AN01WH_F2D.bmp") == {
        "subject": "F0001", "label": E("anger"), "intensity": 1, "race": "WH", "kind": "F2D", "yaw": 0}
    assert parse_bu3dfe_name(tmp_path / "M0042_SU04AE_F2D_yaw-45.png")["yaw"] == -45
    with pytest.raises(ValueError, match="intensity 05"):
        parse_bu3dfe_name(tmp_path / "F0001_HA05WH_F2D.bmp")
    with pytest.raises(ValueError, match="intensity 02 for NE"):
        parse_bu3dfe_name(tmp_path / "F0001_NE02WH_F2D.bmp")


def test_bu3dfe_tree_filters_intensity_and_pose(tmp_path):
    for subject in ("F0001", "M0002"):
        _image(tmp_path / subject / f"{subject}_NE00WH_F2D.bmp")
        for code in ("HA", "SA"):
            for level in (1, 2, 3, 4):
                _image(tmp_path / subject / f"{subject}_{code}{level:02d}WH_F2D.bmp")
                _image(tmp_path / "renders" / f"{subject}_{code}{level:02d}WH_F2D_yaw30.png")
    frontal = index_bu3dfe(tmp_path, yaws=[0])
    assert len(frontal) == 2 * (1 + 2 * 4)
    strong = index_bu3dfe(tmp_path, min_intensity=3, yaws="0")
    assert label_counts(strong) == {"neutral": 2, "happiness": 4, "sadness": 4}
    assert {s.meta["intensity"] for s in strong} == {0, 3, 4}
    turned = index_bu3dfe(tmp_path, yaws="30")
    assert len(turned) == 2 * 2 * 4 and all(s.meta["yaw"] == 30 for s in turned)
    assert detect_format(tmp_path) == "bu3dfe" and not wants_face_crop("bu3dfe", {})


def test_kdef_and_bu3dfe_pair_each_face_with_itself_in_the_other_expressions(tmp_path):
    for session in "AB":
        for code in ("AN", "HA", "SU"):
            for angle in ("S", "HL"):
                _image(tmp_path / "kdef" / f"{session}F01{code}{angle}.JPG")
    _image(tmp_path / "kdef" / "AM02ANS.JPG")   # a second person, in one expression only
    kdef = {s.path.name: s for s in with_expression_pairs(index_kdef(tmp_path / "kdef"), "kdef")}
    pairs = kdef["AF01ANS.JPG"].meta[EXPRESSION_PAIRS]
    assert {EXPRESSIONS[k]: Path(p).name for k, p in enumerate(pairs) if p} == {
        "happiness": "AF01HAS.JPG", "surprise": "AF01SUS.JPG"}   # same person, session and angle; not itself
    assert kdef["BF01SUHL.JPG"].meta[EXPRESSION_PAIRS][E("anger")].endswith("BF01ANHL.JPG")
    assert kdef["AM02ANS.JPG"].meta[EXPRESSION_PAIRS] == [None] * len(EXPRESSIONS)
    for level in (1, 2, 3, 4):
        for code in ("HA", "SA"):
            _image(tmp_path / "bu" / f"F0001_{code}{level:02d}WH_F2D.bmp")
        _image(tmp_path / "bu" / f"F0001_HA{level:02d}WH_F2D_yaw30.png")
    _image(tmp_path / "bu" / "F0001_NE00WH_F2D.bmp")
    bu = {s.path.name: s for s in with_expression_pairs(index_bu3dfe(tmp_path / "bu"), "bu3dfe")}

    def pair(name, expression):
        path = bu[name].meta[EXPRESSION_PAIRS][E(expression)]
        return path and Path(path).name

    assert pair("F0001_HA02WH_F2D.bmp", "sadness") == "F0001_SA02WH_F2D.bmp"   # its own intensity
    assert pair("F0001_NE00WH_F2D.bmp", "happiness") == "F0001_HA04WH_F2D.bmp"   # else the strongest
    assert pair("F0001_HA02WH_F2D.bmp", "neutral") == "F0001_NE00WH_F2D.bmp"
    assert pair("F0001_HA02WH_F2D_yaw30.png", "sadness") is None   # no sad face at that pose
    assert pair("F0001_HA02WH_F2D.bmp", "happiness") is None


def test_mmi_takes_the_three_middle_frames_of_each_sequence(tmp_path, caplog):
    assert [p.name for p in peak_frames([tmp_path / f"f{i}.png" for i in range(1, 11)])] == ["f4.png", "f5.png", "f6.png"]
    assert [p.name for p in peak_frames([tmp_path / f"f{i}.png" for i in range(1, 8)])] == ["f3.png", "f4.png", "f5.png"]
    for i in range(1, 12):  # natural order: frame10 comes after frame9
        _image(tmp_path / "happiness" / "S001-101" / f"frame{i}.png", value=i)
    for i in range(1, 6):
        _image(tmp_path / "4" / "S002-007" / f"frame{i}.png")  # MMI's emotion code 4 = happiness
    _image(tmp_path / "surprise" / "S003-001" / "frame1.png")  # too short: all of it, counted
    with caplog.at_level(logging.WARNING):
        samples = index_mmi(tmp_path)
    first = [s for s in samples if s.meta["sequence"] == "happiness/S001-101"]
    assert [s.path.name for s in first] == ["frame5.png", "frame6.png", "frame7.png"]
    assert {s.subject for s in samples} == {"S001", "S002", "S003"}
    assert label_counts(samples) == {"happiness": 6, "surprise": 1}
    assert "1 sequences have fewer than 3 frames" in caplog.text


def test_mmi_with_a_labels_csv(tmp_path):
    for seq in ("1001", "1002"):
        for i in range(4):
            _image(tmp_path / "Sessions" / seq / f"{i:03d}.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("\ufeffsequence,label,subject\n1001,1,S010\n", encoding="utf-8")   # with a spreadsheet's BOM
    samples = index_mmi(tmp_path, labels_csv=labels)
    assert len(samples) == 3 and {(s.label, s.subject) for s in samples} == {(E("anger"), "S010")}
    labels.write_bytes(b"\xffsequence")
    with pytest.raises(ValueError, match="labels.csv: not a UTF-8 CSV"):
        index_mmi(tmp_path, labels_csv=labels)
    with pytest.raises(ValueError, match="a sequence directly under"):
        index_mmi(tmp_path / "Sessions")


def test_csv_list_with_and_without_header_aliases_subjects_and_bad_rows(tmp_path):
    for name in ("a.png", "b.png", "c.png"):
        _image(tmp_path / "img" / name)
    plain = tmp_path / "plain.csv"
    plain.write_text("img/a.png,happy,s1\nimg/b.png,Angry,s2,nir\n")
    samples = index_csv(plain)
    assert [(s.label, s.subject, s.domain) for s in samples] == [(E("happiness"), "s1", "csv"), (E("anger"), "s2", "nir")]
    headed = tmp_path / "headed.csv"
    headed.write_text("subject,label,path\nx,contempt,img/a.png\ny,,img/b.png\nz,sad,img/c.png\n")
    samples = index_csv(headed, ignore=["contempt"])
    assert [(s.label, s.subject) for s in samples] == [(None, "y"), (E("sadness"), "z")]
    with pytest.raises(ValueError, match=r"headed\.csv:2: unknown generic label 'contempt'"):
        index_csv(headed)
    missing = tmp_path / "missing.csv"
    missing.write_text("img/a.png,happy\nimg/zzz.png,sad\n")
    with pytest.raises(FileNotFoundError, match=r"missing\.csv:2: image .*zzz\.png does not exist"):
        index_csv(missing)
    with pytest.raises(ValueError, match="have no label"):  # a classifier's data must be labelled
        load_samples(headed, {"ignore_labels": "contempt"})


def test_a_spreadsheets_byte_order_mark_is_read_and_a_binary_csv_is_one_clear_error(tmp_path):
    _image(tmp_path / "img" / "a.png")
    excel = tmp_path / "excel.csv"   # "CSV UTF-8" from a spreadsheet: a byte-order mark before the header
    excel.write_bytes("\ufeffpath,label\nimg/a.png,happy\n".encode("utf-8"))
    assert [(s.path.name, s.label) for s in index_csv(excel)] == [("a.png", E("happiness"))]
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\xff\xfe\x00 latin or binary \xbb")
    with pytest.raises(ValueError, match=r"binary\.csv: not a UTF-8 CSV of path,label"):
        index_csv(binary)


def test_grey_and_16_bit_images_become_three_scaled_channels(tmp_path):
    grey = _image(tmp_path / "grey.png", value=200, channels=1)
    deep = _image(tmp_path / "deep.png", value=4000, dtype=np.uint16, channels=1)  # a 12-bit NIR frame
    listing = tmp_path / "list.csv"
    listing.write_text("grey.png,neutral\ndeep.png,neutral\n")
    dataset = ImageDataset(index_csv(listing), 32)
    for i in range(2):
        image = dataset[i]["image"]
        assert image.shape == (3, 32, 32) and torch.equal(image[0], image[2])
    # 4000 of 4095 is near white, not clipped to 255 of 65535 or truncated to 4000 mod 256.
    assert dataset[1]["image"].mean() == pytest.approx(4000 / 4095 * 2 - 1, abs=0.01)
    assert dataset[0]["image"].mean() == pytest.approx(200 / 127.5 - 1, abs=0.01)
