"""Expression pairs from a dataset's own structure, for CGIT's pair term (`exprada --mode cgit --lambda-pair`).

KDEF photographs each person in all seven expressions in one session, from each angle; BU-3DFE each
subject in each expression at four intensities (neutral once). So the same face in another expression is
already in the dataset, and its file names say which: no `NAME.as-<expression>.png` files are needed (those
are how a plain folder, e.g. `train synth --expression-pairs`, gives them).
"""
from collections import defaultdict
from dataclasses import replace

from face.expressions import EXPRESSIONS

from . import Sample

# Sample.meta key: the path of the face's pair in each expression (EXPRESSIONS order), None where it has none.
EXPRESSION_PAIRS = "expression_pairs"

# Which samples show the same face, the same way: a pair differs only in the expression.
SAME_FACE = {
    "kdef": lambda s: (s.subject, s.meta["session"], s.meta["angle"]),
    "bu3dfe": lambda s: (s.subject, s.meta["kind"], s.meta["yaw"]),
}


def has_structural_pairs(fmt: str) -> bool:
    return fmt in SAME_FACE


def _pick(candidates: list[Sample], intensity) -> Sample:
    """Of the same face's images in one expression: the one at the face's own intensity where there is
    one (BU-3DFE's 01–04), else the strongest; KDEF has one of each."""
    return max(candidates, key=lambda m: (m.meta.get("intensity") == intensity, m.meta.get("intensity", 0),
                                          str(m.path)))


def with_expression_pairs(samples: list[Sample], fmt: str) -> list[Sample]:
    """SAMPLES with meta[EXPRESSION_PAIRS] set from the dataset's structure (`fmt`: kdef or bu3dfe); a
    face's own expression has no pair (the reconstruction term already holds it to itself)."""
    same_face = SAME_FACE[fmt]
    groups = defaultdict(lambda: defaultdict(list))   # face → label → its images
    for sample in samples:
        groups[same_face(sample)][sample.label].append(sample)
    paired = []
    for sample in samples:
        by_label = groups[same_face(sample)]
        pairs = [None if label == sample.label or not by_label[label]
                 else str(_pick(by_label[label], sample.meta.get("intensity")).path)
                 for label in range(len(EXPRESSIONS))]
        paired.append(replace(sample, meta={**sample.meta, EXPRESSION_PAIRS: pairs}))
    return paired
