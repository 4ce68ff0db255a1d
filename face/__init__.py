"""Face geometry shared by the runtime and training: landmarks, bilinear model, fit, renders.

Imports nothing else of the project. Heavy parts (mediapipe) load on first use.
"""
from face.expressions import EXPRESSIONS, NUM_EXPRESSIONS, expression_index

__all__ = ["EXPRESSIONS", "NUM_EXPRESSIONS", "expression_index", "FaceStage", "FaceResult", "NoFace",
           "side_map_for_image", "aligned_crop_for_image", "BilinearModel", "load_model"]


def __getattr__(name):
    # Lazy: `from face.expressions import ...` must not pay for mediapipe.
    if name in ("FaceStage", "FaceResult", "NoFace"):
        from face import stage
        return getattr(stage, name)
    if name in ("side_map_for_image", "aligned_crop_for_image"):
        from face import crops
        return getattr(crops, name)
    if name == "BilinearModel":
        from face.bilinear import BilinearModel
        return BilinearModel
    if name == "load_model":
        from face.bilinear import load
        return load
    raise AttributeError(f"module 'face' has no attribute {name!r}")
