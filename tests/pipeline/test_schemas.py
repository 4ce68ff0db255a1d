"""The published topics' JSON Schemas: the shipped files are what the typed messages say, the
README's tables list exactly their fields, and real messages validate (the end-to-end test checks
every message a subscriber received against them)."""
import json
import re

import jsonschema
import pytest

from pipeline.decide import emotion_message
from pipeline.messages import (Face, SourceStatus, StageStatus, Status, TOPICS, encode, new_header,
                               published_schemas, schema_file)
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


def emotion(valid: bool) -> dict:
    header = new_header(3, "cam", 1_000).stamp("face", 1_000, 2_000)
    if valid:
        header.face = Face(box=[0.0, 1.0, 2.0, 3.0], yaw=1.0, pitch=2.0, roll=3.0)
        header.paths = {"translated": [1 / 7] * 7, "render": [1 / 7] * 7}
        header.probs, header.published_from = [1 / 7] * 7, "fusion"
    else:
        header.invalidate("no face found")
    return json.loads(encode(emotion_message(header, None, CLASSES, 5_000)))


def status() -> dict:
    stage = StageStatus(fps=1.0, frames=2, drops=0, malformed=0, errors=0, queue=0, restarts=0, alive=True, pid=4)
    return json.loads(encode(Status(t_ns=1, mode="live", source=SourceStatus(name="/dev/video0"),
                                    stages={"face": stage}, error=None)))


@pytest.mark.parametrize("topic, message", [("emotion", emotion(True)), ("emotion", emotion(False)),
                                            ("status", status())])
def test_messages_validate_and_broken_ones_do_not(topic, message):
    check = validator(topic)
    check.validate(message)
    for key, bad in (("schema", "exprada.other/9"), ("frame_id" if topic == "emotion" else "t_ns", "7"),
                     ("valid" if topic == "emotion" else "stages", [])):
        with pytest.raises(jsonschema.ValidationError):
            check.validate(dict(message, **{key: bad}))
    assert set(TOPICS) == set(published_schemas())
