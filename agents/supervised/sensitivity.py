"""How much each parameter moves the sound, measured through Vita: per-parameter weights for the loss.

An equal-weight parameter loss spends the network's capacity evenly over parameters the ear cannot tell
apart and the few that decide the sound (the amplitude envelope, levels, cutoff); docs/experiments.md
("What the parameter loss misses") has what each group's error cost the model. So the loss weighs each parameter by
its *audio sensitivity*: over presets drawn like the training data, the mean multi-resolution STFT distance
between a render and the render after moving that one parameter

* continuous and integer parameters: by ``step`` in normalised coordinates (up or down at random,
  reflected at the ends of the range; integers are then quantised, so a 48-semitone transpose moves by
  about 5 semitones at step 0.1);
* on/off: flipped;
* categorical: set to another option, drawn uniformly.

Everything is seeded, and every render is deterministic, so a measurement is reproducible.

    vital-gym sensitivity --config core --n 48 -o configs/sensitivity/core.json
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from agents.dataset.generate import REJECT_REASONS, DatasetConfig, SampleMaker
from agents.supervised.losses import module_switches
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
    # parameter name -> share of the presets where its module was on (``audible_shares``); None in files
    # measured before it was recorded
    audible: dict[str, float] | None = None

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=1) + "\n")
        tmp.replace(path)  # a half-written file never replaces a good one
        return path

    @classmethod
    def load(cls, path: str | Path, space: ParameterSpace) -> Sensitivity:
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

    def loss_weights(self, space: ParameterSpace, floor: float = 0.1, power: float = 1.0, given_audible: bool = False) -> np.ndarray:
        """``(P,)`` weights ``sensitivity ** power``, mean 1 within each kind of parameter, none below ``floor``
        x that mean.

        Normalising per kind keeps :class:`~agents.supervised.losses.LossWeights`' balance between the
        continuous, on/off and categorical terms; the floor keeps a parameter that rarely matters in the loss.
        ``power`` 2 follows a squared loss: an error ``e`` in a parameter of sensitivity ``s`` costs about
        ``(s e)^2`` of squared spectral distance.

        ``given_audible``: the sensitivity of each parameter where its module is on (its mean divided by the
        share of presets where the module was on: moving a parameter of a module that is off moves nothing).
        The plain mean undersells a module that is rarely on: the sampler was on in 4 of the 48 presets of
        ``configs/sensitivity/core.json``, so ``sample_level`` weighed 0.1, the floor, though it sets how
        loud the noise is whenever there is noise. Pair it with ``ignore_switched_off`` in the loss, which
        counts such a parameter only where its module is on.
        """
        if power <= 0:
            raise ValueError(f"power must be > 0, got {power}")
        values = dict(self.values)
        if given_audible:
            if self.audible is None:
                raise ValueError("this sensitivity file has no audible shares; add them with `vital-gym sensitivity --audible-only`")
            values = {name: v / max(self.audible[name], 1.0 / self.presets) for name, v in values.items()}
        raw = np.array([values[p.name] for p in space.parameters], dtype=np.float64) ** power
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
        current = ParameterSpace.discrete_index(float(x[i]), p.n_values)
        other = int(rng.integers(p.n_values - 1))
        y[i] = ParameterSpace.discrete_value(other + (other >= current), p.n_values)
    else:
        v = float(x[i]) + step * (1.0 if rng.random() < 0.5 else -1.0)
        y[i] = -v if v < 0 else 2.0 - v if v > 1 else v
    return y


def audible_shares(space: ParameterSpace, xs: np.ndarray) -> dict[str, float]:
    """Per parameter, the share of the parameter vectors ``xs`` ``(N, P)`` where its module is on (1 where it
    has no on/off switch, or is the switch)."""
    switch = module_switches(space)
    return {p.name: 1.0 if s < 0 else float(np.mean(xs[:, s] > 0.5)) for p, s in zip(space.parameters, switch)}


def measured_presets(config: DatasetConfig, presets: int, seed: int = SENSITIVITY_SEED) -> tuple[SampleMaker, list[dict]]:
    """The sample maker and the ``presets`` samples a measurement with ``seed`` uses (deterministic draws)."""
    maker = SampleMaker(replace(config, seed=seed, audio_sample_rate=None))
    rejected = dict.fromkeys(REJECT_REASONS, 0)
    return maker, [maker.make(k, rejected) for k in range(presets)]  # audible and unclipped, like training samples


def with_audible_shares(sensitivity: Sensitivity, config: DatasetConfig) -> Sensitivity:
    """``sensitivity`` with its ``audible`` shares, from its own presets drawn again (draws are seeded, so
    they are the presets it was measured on; nothing is re-measured)."""
    maker, samples = measured_presets(config, sensitivity.presets, sensitivity.seed)
    if maker.space.fingerprint != sensitivity.fingerprint:
        raise ValueError(f"the config's space '{maker.space.name}' is not the one the sensitivity was measured on ('{sensitivity.space}')")
    return replace(sensitivity, audible=audible_shares(maker.space, np.stack([x["params"] for x in samples])))


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
    maker, samples = measured_presets(config, presets, seed)
    space, renderer = maker.space, maker.renderer
    distance = MultiResolutionSTFTDistance()
    rng = np.random.default_rng(seed)
    totals = np.zeros(len(space.parameters))
    for sample in samples:
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
    audible = audible_shares(space, np.stack([sample["params"] for sample in samples]))
    return Sensitivity(space.name, space.fingerprint, values, presets, step, seed, audible)
