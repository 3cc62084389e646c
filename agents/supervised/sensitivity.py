"""How much each parameter moves the sound, measured through Vita: per-parameter weights for the loss.

An equal-weight parameter loss spends the network's capacity evenly over parameters the ear cannot tell
apart and the few that decide the sound (the amplitude envelope, levels, cutoff). ``scripts/analyse_errors.py``
measures this on the shipped model: giving it the true amplitude envelope alone removes a fifth of its
spectral distance, while its discrete parameters are worth nothing. So the loss weighs each parameter by
its *audio sensitivity*: over presets drawn like the training data, the mean multi-resolution STFT distance
between a render and the render after moving that one parameter

* continuous and integer parameters: by ``step`` in normalised coordinates (up or down at random,
  reflected at the ends of the range; integers are then quantised, so a 48-semitone transpose moves by
  about 5 semitones at step 0.1);
* on/off: flipped;
* categorical: set to another option, drawn uniformly.

Everything is seeded, and every render is deterministic, so a measurement is reproducible.

    vital-gym sensitivity --config configs/dataset/core.yaml --presets 48 --out configs/sensitivity/core.json
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from agents.dataset.generate import REJECT_REASONS, DatasetConfig, SampleMaker
from vital_gym.params import Kind, ParameterSpace
from vital_gym.rewards import MultiResolutionSTFTDistance

SENSITIVITY_SEED = 0x5E45  # presets drawn for measuring, apart from the training (0) and test seeds


@dataclass(frozen=True)
class Sensitivity:
    """Per-parameter mean spectral distance caused by moving that parameter alone."""

    space: str
    fingerprint: str
    values: dict[str, float]  # parameter name -> mean MR-STFT distance
    presets: int
    step: float
    seed: int

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n")
        tmp.replace(path)  # a half-written file never replaces a good one
        return path

    @classmethod
    def load(cls, path: str | Path, space: ParameterSpace) -> "Sensitivity":
        """Read a measurement, refusing one made on another parameter space."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"sensitivity file {path} does not exist (make one with `vital-gym sensitivity`)")
        try:
            d = json.loads(path.read_text())
            s = cls(**d)
        except (json.JSONDecodeError, TypeError) as e:
            raise ValueError(f"{path} is not a sensitivity file: {e}") from e
        if s.fingerprint != space.fingerprint:
            raise ValueError(f"{path} was measured on space '{s.space}' ({s.fingerprint}), not '{space.name}' ({space.fingerprint})")
        return s

    def loss_weights(self, space: ParameterSpace, floor: float = 0.1, power: float = 1.0) -> np.ndarray:
        """``(P,)`` weights ``sensitivity ** power``, mean 1 within each kind of parameter, none below ``floor``
        x that mean.

        Normalising per kind keeps :class:`~agents.supervised.losses.LossWeights`' balance between the
        continuous, on/off and categorical terms; the floor keeps a parameter that rarely matters in the loss.
        ``power`` 2 follows a squared loss: an error ``e`` in a parameter of sensitivity ``s`` costs about
        ``(s e)^2`` of squared spectral distance.
        """
        if power <= 0:
            raise ValueError(f"power must be > 0, got {power}")
        raw = np.array([self.values[p.name] for p in space.parameters], dtype=np.float64) ** power
        kinds = np.array([_kind_group(p.kind) for p in space.parameters])
        weights = np.ones_like(raw)
        for k in np.unique(kinds):
            sel = kinds == k
            w = raw[sel] / max(raw[sel].mean(), 1e-12)
            w = np.maximum(w, floor)
            weights[sel] = w / w.mean()
        return weights.astype(np.float32)


def _kind_group(kind: Kind) -> str:
    return "continuous" if kind in (Kind.CONTINUOUS, Kind.INTEGER) else kind.value


def perturb(space: ParameterSpace, x: np.ndarray, i: int, step: float, rng: np.random.Generator) -> np.ndarray:
    """``x`` with parameter ``i`` moved as described in the module docstring."""
    p, y = space.parameters[i], x.copy()
    if p.kind is Kind.TOGGLE:
        y[i] = 1.0 - round(float(x[i]))
    elif p.kind is Kind.CATEGORICAL:
        current = int(round(float(x[i]) * (p.n_values - 1)))
        other = int(rng.integers(p.n_values - 1))
        y[i] = (other + (other >= current)) / (p.n_values - 1)
    else:
        v = float(x[i]) + step * (1.0 if rng.random() < 0.5 else -1.0)
        y[i] = -v if v < 0 else 2.0 - v if v > 1 else v
    return y


def measure_sensitivity(
    config: DatasetConfig,
    presets: int,
    step: float = 0.1,
    seed: int = SENSITIVITY_SEED,
    progress: Callable[[], None] | None = None,
) -> Sensitivity:
    """Measure every parameter of ``config``'s space on ``presets`` audible presets drawn like its data."""
    if presets < 1 or not 0.0 < step <= 0.5:
        raise ValueError(f"need presets >= 1 and 0 < step <= 0.5, got presets={presets}, step={step}")
    maker = SampleMaker(replace(config, seed=seed, audio_sample_rate=None))
    space, renderer = maker.space, maker.renderer
    distance = MultiResolutionSTFTDistance()
    rng = np.random.default_rng(seed)
    totals = np.zeros(len(space.parameters))
    rejected = dict.fromkeys(REJECT_REASONS, 0)
    for k in range(presets):
        sample = maker.make(k, rejected)  # audible and unclipped, like a training sample
        x, note, velocity = sample["params"], sample["midi_note"], sample["velocity"]
        codec = maker.codec_for(sample["base"])  # a perturbed human preset keeps its own base
        distance.set_target(renderer.render(codec.to_preset(x), note, velocity).audio)
        for i in range(len(space.parameters)):
            y = codec.canonical(perturb(space, x, i, step, rng))
            audio = renderer.render(codec.to_preset(y), note, velocity).audio
            totals[i] += distance(np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0))
        if progress is not None:
            progress()  # one preset done
    values = {p.name: float(t / presets) for p, t in zip(space.parameters, totals)}
    return Sensitivity(space.name, space.fingerprint, values, presets, step, seed)
