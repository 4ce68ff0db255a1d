from face.expressions import EXPRESSIONS
from pipeline.messages import Emotion, Result
from pipeline.summary import describe, summarize
from pipeline.truth import NO_FACE

HAPPY, SAD = EXPRESSIONS.index("happiness"), EXPRESSIONS.index("sadness")


def record(i, valid, label, smoothed, truth, render, total_ms):
    """A frame as decide.DecideStep gives it, published from the translation (translated = label)."""
    t0 = 1_000_000_000 + i * 33_000_000
    emotion = Emotion(frame_id=i, source="s", t_capture_ns=t0, t_publish_ns=t0 + int(total_ms * 1e6), valid=valid,
                      label=label, probs=None, smoothed_label=smoothed, face=None,
                      latency_ms={"face": 5.0, "total": total_ms})
    labels = {"translated": label, "render": render} if valid else {}
    return Result(emotion, truth, {path: v for path, v in labels.items() if v is not None})


def test_accuracy_of_the_translated_and_the_render_path_on_the_frames_with_a_face():
    records = [
        record(0, True, "happiness", "happiness", HAPPY, "sadness", 20),   # translated right, render wrong
        record(1, True, "happiness", "happiness", HAPPY, "happiness", 20),
        record(2, True, "happiness", "happiness", SAD, "sadness", 20),     # translated wrong, render right
        record(3, False, None, "happiness", SAD, None, 20),                # face missed: not in accuracy
        record(4, False, None, None, NO_FACE, None, 20),                   # rightly no face
        record(5, True, "sadness", "sadness", None, "sadness", 100),       # no ground truth
    ]
    summary = summarize(records, {"face": {"drops": 2, "restarts": 1}, "decide": {"drops": 1}}, EXPRESSIONS)
    assert summary["frames"] == 6 and summary["valid"] == 4
    assert summary["frames_with_truth"] == 5 and summary["face_found_rate"] == 0.75
    assert summary["accuracy_translated"] == round(2 / 3, 4) and summary["accuracy_render"] == round(2 / 3, 4)
    assert summary["accuracy_smoothed"] == round(2 / 3, 4) and summary["no_face_agreement"] == 1.0
    assert summary["drops"] == 3 and summary["restarts"] == 1
    assert summary["latency_ms"]["p50"] == 20.0 and summary["latency_ms"]["face_p50"] == 5.0
    assert summary["latency_ms"]["between_p50"] == 15.0   # the rest of the 20 ms: outside every stage
    assert summary["fps"] == round(5 / ((5 * 33e6 + 100e6) / 1e9), 2)


def test_no_ground_truth_gives_no_accuracy():
    summary = summarize([record(0, True, "happiness", "happiness", None, "happiness", 10)], {}, EXPRESSIONS)
    assert summary["frames_with_truth"] == 0 and summary["accuracy_translated"] is None and summary["fps"] is None


def path_record(i, label, translated, render, truth, crop=None):
    r = record(i, True, label, label, truth, None, 20)
    r.emotion.published_from = "pose"
    r.path_labels = {path: v for path, v in (("translated", translated), ("render", render), ("crop", crop))
                     if v is not None}
    return r


def test_published_translated_render_and_crop_accuracies_are_counted_apart():
    records = [
        path_record(0, "happiness", "sadness", "happiness", HAPPY, "happiness"),   # the translation wrong
        path_record(1, "happiness", "sadness", "happiness", HAPPY, "sadness"),     # ... and the crop
        path_record(2, "sadness", "sadness", "happiness", SAD, "sadness"),         # the render wrong
        path_record(3, "sadness", "sadness", None, SAD),                # neither the render nor the crop classified
    ]
    summary = summarize(records, {}, EXPRESSIONS)
    assert summary["published_from"] == "pose"
    assert summary["accuracy_published"] == 1.0
    assert summary["accuracy_translated"] == 0.5
    assert summary["accuracy_render"] == round(2 / 3, 4)
    assert summary["accuracy_crop"] == round(2 / 3, 4)
    words = describe(summary)
    assert ("published (pose) 1.0, translated (with UIT) 0.5, render 0.6667, "
            "crop (aligned frame) 0.6667, smoothed 1.0") in words


def test_a_path_not_classified_gives_no_figure_not_a_zero():
    """Published from the translation, the render classified, the crop not."""
    summary = summarize([record(0, True, "happiness", "happiness", HAPPY, "sadness", 20)], {}, EXPRESSIONS)
    assert summary["accuracy_published"] == summary["accuracy_translated"] == 1.0
    assert summary["accuracy_render"] == 0.0 and summary["published_from"] is None
    assert summary["accuracy_crop"] is None   # from before the crop path: no figure, not a zero


def test_skipped_inputs_are_counted_in_the_summary_and_its_words():
    summary = summarize([record(0, True, "happiness", "happiness", HAPPY, "happiness", 10)], {}, EXPRESSIONS,
                        skipped=3)
    assert summary["skipped"] == 3 and summary["frames"] == 1
    assert "restarts 0, skipped 3" in describe(summary)
    assert summarize([], {}, EXPRESSIONS)["skipped"] == 0


def test_frames_a_stage_failed_on_are_counted_with_the_first_reason_and_fail_the_run():
    import run_pipeline
    from pipeline.messages import FrameHeader

    def failed(i, reason):
        r = record(i, False, None, None, None, None, 10)
        r.emotion.reason = reason
        return r

    shape = "input 'image' shape expected [N,3,64,64], got [1,3,128,128]"
    header = FrameHeader(frame_id=0, source="s", t_capture_ns=0).fail("translate", ValueError(shape))
    all_failed = summarize([failed(i, header.reason) for i in range(3)], {}, EXPRESSIONS)
    assert all_failed["failed"] == 3 and all_failed["first_failure"] == f"translate failed: {shape}"
    assert f"3 frames failed in a stage; the first: translate failed: {shape}" in describe(all_failed)
    assert run_pipeline.exit_status(all_failed) == run_pipeline.EXIT_ERROR
    # frames without a face are no failure: such a run ended, exit 0
    no_faces = summarize([failed(i, "no face found") for i in range(3)], {}, EXPRESSIONS)
    assert no_faces["failed"] == 0 and no_faces["first_failure"] is None
    assert run_pipeline.exit_status(no_faces) == 0
    some = summarize([failed(0, header.reason), record(1, True, "happiness", "happiness", None, None, 10)], {},
                     EXPRESSIONS)
    assert some["failed"] == 1 and run_pipeline.exit_status(some) == 0


def test_the_progress_line_says_the_run_so_far():
    from pipeline.summary import Tally
    tally = Tally(EXPRESSIONS)
    assert tally.progress_line() == "frames 0 · face 0"
    for r in (record(0, True, "happiness", "happiness", HAPPY, None, 20),
              record(1, True, "happiness", "happiness", SAD, None, 30)):
        tally.add(r)
    line = tally.progress_line()
    assert line.startswith("frames 2 · face 2 · ") and "p50 25.0 ms" in line and "accuracy 50.0 %" in line
