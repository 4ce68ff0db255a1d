import pytest

from face.expressions import EXPRESSIONS
from tiny_data import write_images, write_labelled
from train.datasets import Sample, label_counts
from train.datasets.folder import index_labelled_folder, index_unlabelled_folder


def test_labelled_tree_gives_one_sample_per_image_with_its_class(tmp_path):
    write_labelled(tmp_path / "src", per_class=2, size=16, classes=("happiness", "Sadness"))
    samples = index_labelled_folder(tmp_path / "src")
    assert label_counts(samples) == {"happiness": 2, "sadness": 2}
    assert all(s.domain == "source" and s.path.suffix == ".png" for s in samples)
    assert not any(s.path.name.endswith(".side.png") for s in samples)  # side maps are not samples
    assert {s.label for s in samples} == {EXPRESSIONS.index("happiness"), EXPRESSIONS.index("sadness")}


def test_class_folders_may_use_the_usual_words_for_expressions(tmp_path):
    write_labelled(tmp_path / "src", per_class=1, size=16, classes=("happy", "Angry"))
    samples = index_labelled_folder(tmp_path / "src")
    assert label_counts(samples) == {"happiness": 1, "anger": 1}


def test_unlabelled_folder_is_indexed_recursively(tmp_path):
    write_images(tmp_path / "tgt" / "a", 2, 16, seed=1)
    write_images(tmp_path / "tgt" / "b", 1, 16, seed=2)
    samples = index_unlabelled_folder(tmp_path / "tgt")
    assert len(samples) == 3 and all(s.label is None and s.domain == "target" for s in samples)


def test_missing_empty_and_bad_class_folders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        index_labelled_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no class folders"):
        index_labelled_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match="holds no images"):
        index_unlabelled_folder(tmp_path / "empty")
    write_labelled(tmp_path / "src", per_class=1, size=16, classes=("anger",))
    (tmp_path / "src" / "fear").mkdir()
    with pytest.raises(ValueError, match="'fear' has no images"):
        index_labelled_folder(tmp_path / "src")
    (tmp_path / "src" / "fear").rmdir()
    (tmp_path / "src" / "smirk").mkdir()
    with pytest.raises(ValueError, match="smirk: folder name is not an expression"):
        index_labelled_folder(tmp_path / "src")


def test_sample_rejects_a_label_outside_the_expressions(tmp_path):
    with pytest.raises(ValueError, match="label 7"):
        Sample(tmp_path / "x.png", label=7)
