"""Label names of each dataset mapped onto the seven expressions (`face.expressions.EXPRESSIONS`).

Every dataset spells its classes its own way: KDEF and BU-3DFE use two-letter codes in their file
names, MMI annotates emotions 1–6, user CSVs say "happy" or "Angry". One table per dataset; an
unknown name is a clear error naming the dataset, never a silent guess.
"""
from face.expressions import EXPRESSIONS

# Words people use for the seven classes (any dataset). Keys are lower case.
GENERIC = {
    **{name: name for name in EXPRESSIONS},
    "angry": "anger", "anger": "anger", "mad": "anger",
    "disgusted": "disgust", "disgust": "disgust",
    "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happiness", "happiness": "happiness", "joy": "happiness", "smile": "happiness",
    "sad": "sadness", "sadness": "sadness",
    "surprised": "surprise", "surprise": "surprise",
    "neutral": "neutral", "calm": "neutral",
}

# Per-dataset codes on top of the generic words.
DATASET_CODES = {
    # KDEF file names: AF afraid, AN angry, DI disgusted, HA happy, NE neutral, SA sad, SU surprised.
    "kdef": {"af": "fear", "an": "anger", "di": "disgust", "ha": "happiness", "ne": "neutral",
             "sa": "sadness", "su": "surprise"},
    # BU-3DFE file names: AN DI FE HA NE SA SU.
    "bu3dfe": {"an": "anger", "di": "disgust", "fe": "fear", "ha": "happiness", "ne": "neutral",
               "sa": "sadness", "su": "surprise"},
    # MMI's emotion annotation: 1 anger, 2 disgust, 3 fear, 4 happiness, 5 sadness, 6 surprise.
    "mmi": {"1": "anger", "2": "disgust", "3": "fear", "4": "happiness", "5": "sadness", "6": "surprise"},
    # CK+-style numeric codes are common in user CSVs; not used unless asked for.
    "generic": {},
}


def known_names(dataset: str = "generic") -> list[str]:
    """Every label spelling `label_index` accepts for this dataset."""
    return sorted(set(GENERIC) | set(DATASET_CODES.get(dataset, {})))


def label_index(name, dataset: str = "generic", where: str = "") -> int:
    """Index into EXPRESSIONS of a label as the dataset spells it; ValueError naming `where`
    (file, line) and the accepted names otherwise."""
    if dataset not in DATASET_CODES:
        raise ValueError(f"unknown dataset {dataset!r} for label names; expected one of {sorted(DATASET_CODES)}")
    key = str(name).strip().lower()
    canonical = DATASET_CODES[dataset].get(key) or GENERIC.get(key)
    if canonical is None:
        prefix = f"{where}: " if where else ""
        raise ValueError(f"{prefix}unknown {dataset} label {name!r}; expected one of {', '.join(known_names(dataset))}")
    return EXPRESSIONS.index(canonical)
