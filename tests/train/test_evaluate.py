"""`python -m train evaluate`: figures, mean ± std, plots, UIT translation, and bad input."""
import json

import numpy as np
import pytest
import torch

from face.expressions import EXPRESSIONS
from tiny_checkpoints import write_generator_run
from tiny_data import write_labelled
from train.checkpoint import CheckpointError, load_model, save_checkpoint
from train.data import ImageDataset, SideMaps
from train.datasets.folder import index_labelled_folder
from train.classifier_nets import build_classifier
from train.eval_metrics import bootstrap_accuracies, confusion_matrix, mean_std, percent_pm, summarize
from train.evaluate import classify_samples, main


def _classifier_run(run_dir, seed: int, image_size: int = 64):
    torch.manual_seed(seed)
    config = {"arch": "small", "image_size": image_size, "width": 4, "num_classes": 7, "classes": list(EXPRESSIONS),
              "train_classes": {"anger": 4, "happiness": 4, "sadness": 4}}
    save_checkpoint(run_dir / "checkpoints" / "last.pt", kind="classifier", config=config,
                    models={"classifier": build_classifier(config)})
    return run_dir


def test_metrics_by_hand():
    counts = confusion_matrix([0, 0, 0, 3, 3, 6], [0, 0, 3, 3, 0, 6])
    figures = summarize(counts)
    assert figures["accuracy"] == pytest.approx(4 / 6)
    assert figures["per_class_accuracy"]["anger"] == pytest.approx(2 / 3) and figures["per_class_accuracy"]["fear"] is None
    # F1: anger p=2/3 r=2/3 → 2/3; happiness p=1/2 r=1/2 → 1/2; neutral 1 → macro (2/3 + 1/2 + 1) / 3
    assert figures["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert figures["missing_classes"] == ["disgust", "fear", "sadness", "surprise"]
    assert percent_pm(*mean_std([0.707, 0.709, 0.711])) == "70.9 ± 0.2"
    assert mean_std([0.5]) == (0.5, 0.0)
    spread = bootstrap_accuracies(np.array([1, 0, 1, 1]), 20)
    assert len(spread) == 20 and 0 < np.std(spread) and spread == bootstrap_accuracies(np.array([1, 0, 1, 1]), 20)
    with pytest.raises(ValueError, match="4 labels but 3 predictions"):
        confusion_matrix([0, 1, 2, 3], [0, 1, 2])


def test_several_classifiers_give_mean_and_std_per_class_figures_and_plots(tmp_path, capsys):
    data = write_labelled(tmp_path / "test", per_class=3, size=64, classes=("anger", "happiness", "fear"), side=False)
    runs = [str(_classifier_run(tmp_path / f"s{seed}", seed)) for seed in range(3)]
    assert main(["--classifier", *runs, "--data", str(data), "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    values = [c["accuracy"] for c in report["classifiers"]]
    assert report["accuracy"]["over"] == "3 classifiers" and report["accuracy"]["values"] == values
    assert report["accuracy"]["mean"] == pytest.approx(np.mean(values))
    assert report["accuracy"]["std"] == pytest.approx(np.std(values, ddof=1))
    assert report["images"] == 9 and sum(map(sum, report["confusion_matrix"])) == 27  # pooled over 3 classifiers
    assert report["per_class_accuracy"]["disgust"] is None and "disgust" in report["missing_classes"]
    for name in ("confusion.png", "tsne.png", "predictions.csv"):
        assert (tmp_path / "ev" / name).stat().st_size > 500, name
    printed = capsys.readouterr().out
    assert f"accuracy {report['accuracy']['text']} % (3 classifiers, 9 images)" in printed
    assert "disgust    no test images" in printed


def test_one_classifier_with_seeds_uses_bootstrap_resamples(tmp_path):
    data = write_labelled(tmp_path / "test", per_class=3, size=64, classes=("anger", "happiness"), side=False)
    run = _classifier_run(tmp_path / "c", 0)
    assert main(["--classifier", str(run), "--data", str(data), "--seeds", "8", "--out", str(tmp_path / "ev"),
                 "--no-tsne", "--no-progress"]) == 0
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["accuracy"]["over"] == "8 bootstrap resamples" and len(report["accuracy"]["values"]) == 8
    assert not (tmp_path / "ev" / "tsne.png").exists()


def test_translating_with_a_uit_generator_first(tmp_path):
    data = write_labelled(tmp_path / "renders", per_class=2, size=64, classes=("anger", "surprise"), side=True)
    run = _classifier_run(tmp_path / "c", 0)
    write_generator_run(tmp_path / "uit", "uit", image_size=64)
    plain, translated = tmp_path / "plain", tmp_path / "translated"
    assert main(["--classifier", str(run), "--data", str(data), "--out", str(plain), "--no-progress"]) == 0
    assert main(["--classifier", str(run), "--data", str(data), "--generator", str(tmp_path / "uit"),
                 "--out", str(translated), "--no-progress"]) == 0
    assert len((translated / "predictions.csv").read_text().splitlines()) == 1 + 4
    # What the classifier saw: the generator's output, not the images themselves.
    net, generator = load_model(run)[0], load_model(tmp_path / "uit")[0]
    samples = index_labelled_folder(data)
    as_is = classify_samples(net, samples, 64, torch.device("cpu"))
    after = classify_samples(net, samples, 64, torch.device("cpu"), generator=generator,
                             side_maps=SideMaps(tmp_path / "cache"))
    images = torch.stack([ImageDataset(samples, 64)[i]["image"] for i in range(len(samples))])
    sides = torch.stack([ImageDataset(samples, 64, SideMaps(tmp_path / "cache"))[i]["side"] for i in range(len(samples))])
    with torch.no_grad():
        expected = net(generator(torch.cat([images, sides], 1))[0])[1].numpy()
    scale = np.abs(expected).max()
    assert np.abs(after["embeddings"] - expected).max() < 1e-4 * scale
    assert np.abs(as_is["embeddings"] - expected).max() > 0.1 * scale
    assert json.loads((translated / "metrics.json").read_text())["generator"] == str(tmp_path / "uit")


def test_bad_input_is_named(tmp_path):
    data = write_labelled(tmp_path / "test", per_class=2, size=64, classes=("anger", "happiness"), side=True)
    (data / "anger" / "broken.png").write_bytes(b"broken")
    run = _classifier_run(tmp_path / "c", 0)
    assert main(["--classifier", str(run), "--data", str(data), "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["images"] == 4 and report["bad_files"] == [str(data / "anger" / "broken.png")]
    (data / "anger" / "broken.png").unlink()
    write_generator_run(tmp_path / "uit32", "uit", image_size=128)
    with pytest.raises(ValueError, match=r"generator makes 128² images but the classifier takes 64²"):
        main(["--classifier", str(run), "--data", str(data), "--generator", str(tmp_path / "uit32"), "--out", str(tmp_path / "x")])
    write_generator_run(tmp_path / "cgit", "cgit", image_size=64)
    with pytest.raises(CheckpointError, match="evaluation.s translation needs a UIT generator"):
        main(["--classifier", str(run), "--data", str(data), "--generator", str(tmp_path / "cgit"), "--out", str(tmp_path / "x")])
    with pytest.raises(CheckpointError, match="a cgit_generator checkpoint; evaluation needs a classifier"):
        main(["--classifier", str(tmp_path / "cgit"), "--data", str(data), "--out", str(tmp_path / "x")])
    _classifier_run(tmp_path / "c128", 0, image_size=128)
    with pytest.raises(ValueError, match=r"different image sizes \[64, 128\]"):
        main(["--classifier", str(run), str(tmp_path / "c128"), "--data", str(data), "--out", str(tmp_path / "x")])
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "smirk").mkdir()
    with pytest.raises(ValueError, match="smirk: folder name is not an expression"):
        main(["--classifier", str(run), "--data", str(tmp_path / "odd"), "--out", str(tmp_path / "x")])


def test_default_data_is_the_classifier_runs_own_test_subjects(tmp_path, capsys):
    from train.classifier import main as train_main
    rows = []
    for p in range(5):
        for name in ("anger", "happiness"):
            write_labelled(tmp_path / "d" / f"p{p}", per_class=1, size=32, classes=(name,), seed=p, side=False)
            for path in (tmp_path / "d" / f"p{p}" / name).glob("*.png"):
                rows.append(f"{path.relative_to(tmp_path / 'd')},{name},p{p}")
    (tmp_path / "d" / "list.csv").write_text("\n".join(rows) + "\n")
    run = tmp_path / "run"
    assert train_main(["--data", str(tmp_path / "d" / "list.csv"), "--backbone", "small", "--width", "4",
                       "--image-size", "32", "--steps", "2", "--workers", "0", "--no-progress", "--test-fraction", "0.4",
                       "--val-fraction", "0", "--out", str(run)]) == 0
    assert main(["--classifier", str(run), "--out", str(tmp_path / "ev"), "--no-progress"]) == 0
    split = json.loads((run / "split.json").read_text())
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["images"] == 2 * len(split["subjects"]["test"]) == 4
    assert report["accuracy"]["mean"] == pytest.approx(json.loads((run / "summary.json").read_text())["test"]["accuracy"])
    # A folder that cannot be written is refused before anything is classified (was: a traceback at the end).
    with pytest.raises(SystemExit, match=r"^error: --out /proc: cannot write in /proc: "):
        main(["--classifier", str(run), "--out", "/proc", "--no-progress"])
    with pytest.raises(SystemExit) as stop:
        main(["--classifier", str(run), "--out", str(tmp_path / "x"), "--batch-size", "0"])
    assert stop.value.code == 2 and "argument --batch-size: must be at least 1, got 0" in capsys.readouterr().err
