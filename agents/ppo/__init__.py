"""PPO initialised from the supervised sound matcher (stable-baselines3)."""

from agents.ppo.policy import SoundMatcherPolicy

__all__ = ["SoundMatcherPolicy"]
