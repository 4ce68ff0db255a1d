"""The two stage layouts run the same steps: staged (face, translate, classify each a stage) and
fused (the three in one stage); `run_steps` times each step under its own name, and a step that
raises fails the frame with that step's name and stops it there (real ONNX Runtime sessions of the
shipped models). The layouts' end-to-end runs are in test_pipeline_e2e.py."""
import numpy as np
import pytest

from pipeline.config import LAYOUTS, PipelineConfig, resolve_models
from pipeline.messages import new_header
from pipeline.stages import CAPTURE, DECIDE, TABLES, TIMED, TRANSFORM, stage_table, workers
from pipeline.steps import STEPS, ClassifyStep, TranslateStep, run_steps
from pipeline_helpers import REPO

GENERATOR, CLASSIFIER = REPO / "models" / "uit_generator.onnx", REPO / "models" / "classifier.onnx"


def test_both_layouts_run_every_step_once_in_order():
    assert set(TABLES) == set(LAYOUTS)
    for table in TABLES.values():
        assert table[0] == CAPTURE and table[-1] == DECIDE
        assert tuple(step for stage in table if stage.role == TRANSFORM for step in stage.steps) == STEPS
    assert TIMED == ("capture", "face", "translate", "classify", "decide")


def test_layout_default_and_bad_value():
    for live in (None, True):   # a replay, live: fused either way (the lowest latency, the fastest replay)
        assert PipelineConfig(source="drive.mp4", live=live).layout == "fused"
    with pytest.raises(ValueError, match="layout 'pipelined': expected one of fused, staged"):
        PipelineConfig(layout="pipelined")
    fused = PipelineConfig(source="drive.mp4", face_workers=2)
    assert [w.name for w in workers(fused)] == ["capture", "perceive.0", "perceive.1", "decide"]
    assert [s.name for s in stage_table(PipelineConfig(source="drive.mp4", layout="staged"))] == [
        "capture", "face", "translate", "classify", "decide"]


@pytest.mark.skipif(not (GENERATOR.is_file() and CLASSIFIER.is_file()),
                    reason="the default models are not built yet (models/build_default_models.sh)")
def test_run_steps_times_each_step_and_stops_at_a_failure():
    config = resolve_models(PipelineConfig(generator=str(GENERATOR), classifier=str(CLASSIFIER)))
    steps = [TranslateStep(config), ClassifyStep(config)]
    size = config.image_size
    rng = np.random.default_rng(0)
    image = lambda: rng.integers(0, 256, (size, size, 3), dtype=np.uint8)  # noqa: E731
    header, arrays, failed = run_steps(steps, new_header(0, "s", 0),
                                       {"frontal": image(), "side_map": image(), "crop": image()})
    assert not failed and header.valid and set(header.timing) == {"translate", "classify"}
    assert len(header.probs) == len(config.classes) and "side_map" not in arrays

    # A side map of the wrong size: translate raises; the frame fails, named, and classify never sees it.
    header, arrays, failed = run_steps(steps, new_header(1, "s", 0),
                                       {"frontal": image(), "side_map": image()[:5], "crop": image()})
    assert failed and not header.valid and header.reason.startswith("translate failed:")
    assert set(header.timing) == {"translate"} and arrays == {} and header.probs is None
