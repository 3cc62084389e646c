"""vital-gym: inverse synthesis on the Vital synthesizer.

Importing the package registers ``VitalMatch-v0`` (Gymnasium 1.x has no entry-point plugins), so both
``import vital_gym; gym.make("VitalMatch-v0")`` and ``gym.make("vital_gym:VitalMatch-v0")`` work.
"""

from importlib.metadata import PackageNotFoundError, version

from gymnasium.envs.registration import register, registry

from vital_gym.params import ParameterSpace, available_spaces
from vital_gym.preset import Preset, PresetCodec, PresetError
from vital_gym.render import RenderConfig, Renderer
from vital_gym.rewards import RewardConfig

try:
    __version__ = version("vital-gym")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "unknown"

if "VitalMatch-v0" not in registry:
    register(id="VitalMatch-v0", entry_point="vital_gym.envs.vital_match:VitalMatchEnv")

__all__ = [
    "ParameterSpace",
    "Preset",
    "PresetCodec",
    "PresetError",
    "RenderConfig",
    "Renderer",
    "RewardConfig",
    "available_spaces",
]
