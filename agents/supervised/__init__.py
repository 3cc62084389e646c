"""The supervised warm start: an AudioMAE-style encoder with a parameter decoder, its loss and training."""

from agents.supervised.checkpoint import load_model, save_checkpoint
from agents.supervised.losses import ParameterLoss
from agents.supervised.model import ModelConfig, SoundMatcher

__all__ = ["ModelConfig", "ParameterLoss", "SoundMatcher", "load_model", "save_checkpoint"]
