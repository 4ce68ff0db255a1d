"""One run's settings, handed to every stage process (picklable, plain values only)."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from engines.contract import CLASSES, CLASSIFIER, DEFAULT_IMAGE_SIZE, UIT_GENERATOR, ModelInfo
from pipeline import wire
from pipeline.dms import DmsSettings
from pipeline.fusion import CROP_YAW, PATHS, check_publish, default_weight

DEFAULT_PUBLISH = "tcp://127.0.0.1:5560"
MODELS = Path(__file__).resolve().parents[1] / "models"   # repo files, not package data: any working directory finds them
DEFAULT_GENERATOR = str(MODELS / "uit_generator.onnx")
DEFAULT_CLASSIFIER = str(MODELS / "classifier.onnx")
LAYOUTS = ("fused", "staged")   # how the steps are spread over processes (pipeline/stages.py)
NEEDS = {"pose": PATHS, "fusion": ("translated", "render"), "translated": ("translated",),
         "render": ("render",), "crop": ("crop",)}   # the paths each publish mode pools


@dataclass
class PipelineConfig:
    source: str = "demo"
    fast: bool = False                  # replay as fast as possible instead of at the recorded rate
    live: bool | None = None            # latest-wins; None: cameras live, files and folders replay
    engine: str = "onnxruntime"
    generator: str = DEFAULT_GENERATOR
    classifier: str = DEFAULT_CLASSIFIER
    threads: int = 1                    # engine threads per stage (processes already use the cores)
    face_workers: int = 2               # face (fused: perceive) replicas: the costliest stage, on alternate frames
    layout: str = "fused"               # fused | staged: how the steps are spread over processes (pipeline/stages.py)
    all_paths: bool = True              # also classify the paths not published (accuracy of every path)
    publish_mode: str = "fusion"        # the published label: fusion | pose | translated | render | crop (fusion.py)
    fusion_weight: float | None = None  # fusion: the translated path's share; pose: its share of what the crop
                                        # leaves (None: the mode's default, pipeline/fusion.py)
    crop_yaw: float = CROP_YAW          # pose: the |yaw| in degrees from which the crop has no weight
    publish: str = DEFAULT_PUBLISH
    allow_remote: bool = False          # publish on an address other machines can reach (pipeline/curve.py)
    curve_secret_key: str | None = None # CURVE: the pipeline's secret key file; only known subscribers get in
    curve_clients: str | None = None    # CURVE: the folder of the subscribers' public keys
    save_video: str | None = None
    display: bool = False
    record: str | None = None
    max_frames: int | None = None
    single_process: bool = False
    pixel_format: str = "auto"          # camera FOURCC: GREY, Y16, ... (auto: the driver's default)
    folder_fps: float = 30.0
    max_bytes: int = wire.DEFAULT_MAX_BYTES
    status_period_s: float = 1.0
    progress: bool = False              # a live line on stderr each status period (run_pipeline: on a terminal)
    max_restarts: int = 5               # per stage, within restart_window_s, before the run gives up
    restart_window_s: float = 60.0
    stall_timeout_s: float = 15.0       # a stage process silent this long is killed and restarted (0: never)
    run_token: str = ""                 # the run's secret: every internal message carries it (pipeline/wire.py)
    dms: DmsSettings = field(default_factory=DmsSettings)   # the driver monitor's thresholds (pipeline/dms/)
    image_size: int = DEFAULT_IMAGE_SIZE    # filled from the models' metadata
    classes: tuple = field(default=CLASSES)

    def __post_init__(self):
        check_publish(self.publish_mode, self.fusion_weight, self.crop_yaw)
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout {self.layout!r}: expected one of {', '.join(LAYOUTS)}")
        if self.fusion_weight is None:
            self.fusion_weight = default_weight(self.publish_mode)

    @property
    def paths(self) -> tuple[bool, bool, bool]:
        """Which of PATHS to classify — (the translation, the untranslated render, the aligned crop):
        what the published label needs, and with `all_paths` all three, so the summary can report
        every path."""
        return tuple(self.all_paths or path in NEEDS[self.publish_mode] for path in PATHS)

    @property
    def token(self) -> bytes:
        return self.run_token.encode()

    @property
    def run_id(self) -> str:
        """A public name of the run (the token itself stays secret)."""
        return hashlib.sha256(self.token).hexdigest()[:12] if self.run_token else ""

    @property
    def overlay(self) -> bool:
        return bool(self.save_video or self.display)

    @property
    def mode(self) -> str:
        from pipeline.sources import is_camera
        from pipeline.transport import LIVE, REPLAY

        live = is_camera(self.source) if self.live is None else self.live
        return LIVE if live else REPLAY


def model_info(path) -> ModelInfo:
    """A model's contract facts from its metadata, without starting a runtime (the parent checks models early)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"model {path} not found (models/README.md gives the commands that train "
                                f"the default models)")
    return ModelInfo.of(path)


def engine_file(path, engine: str) -> str:
    """The artefact a backend loads: the torch backend runs the .pt2 program exported beside the .onnx."""
    path = Path(path)
    if engine == "torch" and path.suffix == ".onnx":
        program = path.with_suffix(".pt2")
        if not program.is_file():
            raise FileNotFoundError(f"--engine torch runs torch.export programs: no {program} beside {path} "
                                    f"(`python -m train export` writes one)")
        return str(program)
    return str(path)


IDENTITY = "identity"   # --generator identity: no translation, the translated path is the render itself


def resolve_models(config: PipelineConfig) -> PipelineConfig:
    """Check both models exist, are a UIT generator and a classifier, and agree on the image size;
    take the image size and class names from them; point the paths at what the chosen backend loads."""
    generator = None if config.generator == IDENTITY else model_info(config.generator).expect(UIT_GENERATOR)
    classifier = model_info(config.classifier).expect(CLASSIFIER)
    config.classifier = engine_file(config.classifier, config.engine)
    if generator is not None:
        config.generator = engine_file(config.generator, config.engine)
        if classifier.image_size != generator.image_size:
            raise ValueError(f"image sizes differ: generator {config.generator} takes {generator.image_size}, "
                             f"classifier {config.classifier} takes {classifier.image_size}")
    config.image_size, config.classes = classifier.image_size, classifier.classes
    return config
