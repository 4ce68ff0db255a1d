"""The published topics' JSON Schemas: the shipped files are what the typed messages say, the
README's tables list exactly their fields, and real messages validate (the end-to-end test checks
every message a subscriber received against them)."""
import json
import re

import jsonschema
import pytest

from pipeline.decide import emotion_message
from pipeline.dms import DriverMonitor
from pipeline.messages import (Blink, Event, Eyes, Face, SourceStatus, StageStatus, Status, TOPICS, encode,
                               new_header, published_schemas, schema_file)
from pipeline_helpers import REPO

CLASSES = ("anger", "disgust", "fear", "happiness", "sadness", "surprise", "neutral")


def validator(topic: str) -> jsonschema.protocols.Validator:
    schema = json.loads(schema_file(topic).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_shipped_schema_files_are_the_types_schemas():
    """`python -m pipeline.messages` rewrites them; a type changed without that fails here."""
    for topic, schema in published_schemas().items():
        assert json.loads(schema_file(topic).read_text()) == schema, f"schemas/{topic}.schema.json is stale"


def readme_fields(heading: str) -> set[str]:
    """The backticked names in the first column of the table under `heading` in README.md."""
    text = (REPO / "README.md").read_text()
    start = text.index(heading)
    table = re.search(r"\n(\|.*\|\n)+", text[start:]).group(0)
    fields = set()
    for row in table.strip().splitlines()[2:]:
        fields |= set(re.findall(r"`([a-z_]+)`", row.split("|")[1]))
    return fields


def properties(schema: dict, name: str) -> set[str]:
    return set(schema["$defs"][name]["properties"])


def test_the_readme_tables_list_every_field_and_no_other():
    schemas = published_schemas()
    assert readme_fields("Topic `emotion`") == properties(schemas["emotion"], "Emotion")
    assert readme_fields("Topic `status`") == properties(schemas["status"], "Status")
    assert readme_fields("Each stage in `stages`") == properties(schemas["status"], "StageStatus")
    assert readme_fields("The `source` of a status") == properties(schemas["status"], "SourceStatus")
    assert readme_fields("The `face` of an emotion") == properties(schemas["emotion"], "Face")
    assert readme_fields("The `driver` of an emotion") == properties(schemas["emotion"], "Driver")
    assert readme_fields("The `eyes` of a driver") == properties(schemas["emotion"], "Eyes")
    assert readme_fields("The `blink` of a driver") == properties(schemas["emotion"], "Blink")
    assert readme_fields("Topic `event`") == properties(schemas["event"], "Event")


def test_version_2_keeps_every_version_1_field_as_it_was():
    """An emotion/1 consumer reads /2 messages unchanged: every field it knows has the same schema
    and is still required where it was; /2 only adds optional fields (schemas/emotion.v1.schema.json
    is the /1 schema as it shipped)."""
    old = json.loads((REPO / "schemas" / "emotion.v1.schema.json").read_text())
    new = published_schemas()["emotion"]
    for name, definition in old["$defs"].items():
        added = set(new["$defs"][name]["properties"]) - set(definition["properties"])
        assert added.isdisjoint(new["$defs"][name].get("required", [])), f"{name}: a new field is required"
        assert new["$defs"][name].get("required") == definition.get("required")
        for field, schema in definition["properties"].items():
            if field != "schema":
                assert new["$defs"][name]["properties"][field] == schema, f"{name}.{field} changed"
    message = emotion(True)
    jsonschema.Draft202012Validator(old).validate(dict(message, schema="exprada.emotion/1"))


def emotion(valid: bool) -> dict:
    header = new_header(3, "cam", 1_000, t_media_ns=0).stamp("face", 1_000, 2_000)
    if valid:
        header.face = Face(box=[0.0, 1.0, 2.0, 3.0], yaw=1.0, pitch=2.0, roll=3.0, yaw_std=1.5)
        header.eyes = Eyes(openness_left=0.3, openness_right=0.28, left_visible=True, right_visible=True,
                           gaze_yaw=2.0, gaze_pitch=-1.0, camera_gaze_yaw=3.0, camera_gaze_pitch=1.0)
        header.paths = {"translated": [1 / 7] * 7, "render": [1 / 7] * 7}
        header.probs, header.published_from = [1 / 7] * 7, "fusion"
    else:
        header.invalidate("no face found")
    driver, _ = DriverMonitor()(header)
    if valid:
        driver.blink = Blink(t_start_ns=0, t_end_ns=150_000_000, duration_ms=150.0)
    return json.loads(encode(emotion_message(header, None, CLASSES, 5_000, driver)))


def event(state: str) -> dict:
    fields = dict(event_id=1, kind="distraction", state=state, source="cam", frame_id=9, t_ns=3_100_000_000,
                  t_start_ns=0, confidence=1.0, cause="eyes", value=3.1)
    if state == "end":
        fields.update(t_end_ns=4_000_000_000, duration_s=4.0)
    return json.loads(encode(Event(**fields)))


def status() -> dict:
    stage = StageStatus(fps=1.0, frames=2, drops=0, malformed=0, errors=0, queue=0, restarts=0, alive=True, pid=4)
    return json.loads(encode(Status(t_ns=1, mode="live", source=SourceStatus(name="/dev/video0"),
                                    stages={"face": stage}, error=None)))


BROKEN = {"emotion": (("frame_id", "7"), ("valid", [])), "status": (("t_ns", "7"), ("stages", [])),
          "event": (("event_id", "7"), ("confidence", None))}


@pytest.mark.parametrize("topic, message", [("emotion", emotion(True)), ("emotion", emotion(False)),
                                            ("status", status()), ("event", event("start")),
                                            ("event", event("end"))])
def test_messages_validate_and_broken_ones_do_not(topic, message):
    check = validator(topic)
    check.validate(message)
    for key, bad in (("schema", "exprada.other/9"), *BROKEN[topic]):
        with pytest.raises(jsonschema.ValidationError):
            check.validate(dict(message, **{key: bad}))
    assert set(TOPICS) == set(published_schemas())
