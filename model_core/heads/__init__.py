"""Head assets: neutral mesh + named blendshape deltas + identity deltas + landmarks (numpy only)."""

from model_core.heads.asset import REQUIRED_LANDMARKS, HeadAsset, HeadFormatError, load_head, save_head, write_obj

__all__ = ["REQUIRED_LANDMARKS", "HeadAsset", "HeadFormatError", "load_head", "save_head", "write_obj"]
