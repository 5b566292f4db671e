"""Datasets for training and evaluation: the FaceFormer/VOCASET, BIWI, synthetic and plain (manifest) layouts."""

from model_core.data.dataset import MotionCorpus, Sample, Take, crop_sample, parse_take_name
from model_core.data.layout import LAYOUTS, DatasetLayout, open_layout
from model_core.data.masks import MaskError, RegionMask, read_indices
from model_core.data.splits import SPLIT_PRESETS, SPLITS, SplitRule, split_rules

__all__ = [
    "LAYOUTS", "SPLITS", "SPLIT_PRESETS", "DatasetLayout", "MaskError", "MotionCorpus", "RegionMask", "Sample",
    "SplitRule", "Take", "crop_sample", "open_layout", "parse_take_name", "read_indices", "split_rules",
]
