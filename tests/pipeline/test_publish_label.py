"""The published label on a drive where the translation hurts: a generator that dims every render
makes the translated path call bright faces "sad"; the render and the crop path stay right; pose
(the default: the driver looks ahead, so mostly the crop) and fusion keep the published label right,
and the summary reports all four accuracies (the sequential loop; the staged pipeline goes through
the same decide.DecideStep and summary.Tally, see test_pipeline_e2e.py)."""
import numpy as np
import pytest

from face.expressions import EXPRESSIONS
from pipeline.config import PipelineConfig
from pipeline.fusion import publish_probs
from pipeline.sequential import run_sequential
from pipeline.summary import describe
from pipeline.truth import NO_FACE
from pipeline_clips import dimming_generator

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dimming(tmp_path_factory):
    return str(dimming_generator(tmp_path_factory.mktemp("dim") / "uit_generator.onnx", 0.6, 64))


def recount(results, key):
    """Accuracy from the results themselves: `key` is "published" (the message's label) or a path."""
    scored = [r for r in results if r.truth not in (None, NO_FACE) and r.emotion.valid]
    hits = sum((r.emotion.label if key == "published" else r.path_labels[key]) == EXPRESSIONS[r.truth]
               for r in scored)
    return round(hits / len(scored), 4)


@pytest.mark.parametrize("mode", ["pose", "fusion", "translated", "render", "crop"])
def test_summary_reports_the_published_and_every_path_accuracy(mode, models, dimming, drive_clip):
    summary = run_sequential(PipelineConfig(source=str(drive_clip), fast=True, generator=dimming,
                                            classifier=models[1], publish_mode=mode))
    results = summary.pop("results")
    # The paths really differ here: the translation is wrong on every bright face.
    assert summary["accuracy_render"] >= 0.9 and summary["accuracy_crop"] >= 0.9
    assert summary["accuracy_translated"] <= 0.5
    assert summary["published_from"] == mode
    for key in ("published", "translated", "render", "crop"):
        assert summary[f"accuracy_{key}"] == recount(results, key)
    if mode in ("pose", "fusion"):   # a translation that hurts does not drag the published label down
        assert summary["accuracy_published"] >= summary["accuracy_render"] - 0.05
    else:
        assert summary["accuracy_published"] == summary[f"accuracy_{mode}"]
    # Every valid message: probs is the published choice made from the three paths it carries (pose:
    # with the face's yaw).
    valid = [r.emotion for r in results if r.emotion.valid]
    assert valid
    for message in valid:
        paths = {path: list(probs.values()) for path, probs in message.paths.items()}
        assert message.published_from == mode and set(paths) == {"translated", "render", "crop"}
        published = publish_probs(paths["translated"], paths["render"], mode, p_crop=paths["crop"],
                                  yaw=message.face.yaw)
        np.testing.assert_allclose(list(message.probs.values()), published, atol=1e-4)
    words = describe(summary)
    assert (f"published ({mode}) {summary['accuracy_published']}, translated (with UIT) "
            f"{summary['accuracy_translated']}, render {summary['accuracy_render']}, "
            f"crop (aligned frame) {summary['accuracy_crop']}") in words


def test_generator_identity_runs_without_a_model_the_render_as_its_own_translation(drive_clip, models):
    from pipeline.config import PipelineConfig
    from pipeline.sequential import run_sequential

    summary = run_sequential(PipelineConfig(source=str(drive_clip), fast=True, generator="identity",
                                            classifier=models[1]))
    results = [r for r in summary["results"] if r.emotion.valid]
    assert results and all(r.emotion.paths["translated"] == r.emotion.paths["render"] for r in results)
    assert summary["accuracy_translated"] == summary["accuracy_render"]
