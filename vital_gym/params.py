"""Parameter spaces over Vital's controls, built from Vita's own control details.

A space is a list of :class:`Parameter` read from ``configs/params/<name>.yaml``. Ranges, defaults,
option names and discreteness come from ``vita.Synth.get_control_details``; the YAML only chooses which
controls are in the space, may narrow a range, and sets sampling priors.

Normalisation. Vital stores every control as the *knob* value: the GUI slider is linear in it, and the
value scale only maps it to the displayed unit (an envelope time in seconds is ``value**4``, a volume in
dB is ``sqrt(value) - 80``, an LFO rate is ``2**value`` Hz, shown as its period ``2**-value`` s). So
``(value - min) / (max - min)`` is the knob position, equal to the value Vital's plugin parameter reports
to a DAW (``ValueBridge``), and a uniform sample in it is a random turn of the knob, not a uniform draw of
seconds or Hz. (Vita's ``get_normalized()`` agrees for linear, quartic and indexed controls, but applies
the display skew to exponential and quadratic ones.) :meth:`Parameter.display` gives the physical unit.

Two representations:

* the **parameter vector** ``x`` in ``[0, 1]^P``, one entry per parameter (discrete values as
  ``index / (n - 1)``): the compact, model-friendly form stored in datasets;
* the **action** ``a`` in ``[-1, 1]^D`` used by the environment: a continuous, integer or on/off
  parameter takes one dimension; a categorical parameter with k options takes k dimensions decoded by
  argmax, so a classifier's logits map straight onto it. :attr:`ParameterSpace.layout` names every
  slice and group so agents can build one head per group.

A space may name a wavetable bank (``wavetables: studio``, :mod:`vital_gym.wavetables`); its parameters
``osc_<i>_wavetable`` (categorical over the bank's tables) choose each oscillator's table.

Modulation slots are parameters too: ``mod_<i>_source`` (categorical: ``none`` or a Vital modulation
source), ``mod_<i>_destination`` (categorical over the configured destinations) and ``mod_<i>_amount``
(continuous in [-1, 1]).
"""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from vital_gym.resources import config_names, find_config
from vital_gym.wavetables import WavetableBank, WavetableError, load_bank

NO_SOURCE = "none"

# Modulation sources whose value is drawn at random on each note: a preset routing them renders
# differently every time, so they are left out of a space's sources unless the YAML names them.
RANDOM_SOURCES = ("random", "random_1", "random_2", "random_3", "random_4")

# LFO shapes that a space can choose as a categorical "shape preset" (Vital stores an LFO's shape as a
# line: x, y pairs with y = 0 at the top, a power per point for curvature, and a smoothing flag).
LFO_SHAPES: dict[str, dict[str, Any]] = {
    "Triangle": {"points": [0.0, 1.0, 0.5, 0.0, 1.0, 1.0], "powers": [0.0, 0.0, 0.0], "smooth": False},
    "Sine": {"points": [0.0, 1.0, 0.5, 0.0, 1.0, 1.0], "powers": [0.0, 0.0, 0.0], "smooth": True},
    "Saw Up": {"points": [0.0, 1.0, 1.0, 0.0, 1.0, 1.0], "powers": [0.0, 0.0, 0.0], "smooth": False},
    "Saw Down": {"points": [0.0, 0.0, 1.0, 1.0, 1.0, 0.0], "powers": [0.0, 0.0, 0.0], "smooth": False},
    "Square": {
        "points": [0.0, 0.0, 0.5, 0.0, 0.5, 1.0, 1.0, 1.0],
        "powers": [0.0, 0.0, 0.0, 0.0],
        "smooth": False,
    },
}
_LFO_SHAPE_NAME = re.compile(r"^lfo_(\d+)_shape$")
_WAVETABLE_NAME = re.compile(r"^osc_(\d)_wavetable$")
_MOD_PARAM = re.compile(r"^mod_(\d+)_(source|destination|amount)$")


class Kind(str, enum.Enum):
    CONTINUOUS = "continuous"
    INTEGER = "integer"
    CATEGORICAL = "categorical"
    TOGGLE = "toggle"


@dataclass(frozen=True)
class ControlInfo:
    """A snapshot of ``vita``'s details for one control (picklable, unlike Vita's object)."""

    name: str
    min: float
    max: float
    default: float
    is_discrete: bool
    scale: str
    options: tuple[str, ...]
    display_multiply: float
    post_offset: float
    units: str
    display_name: str
    display_invert: bool = False  # the GUI shows 1 / (scaled value): a rate in Hz as a period in seconds


def _display_invert(name: str, scale: str, units: str) -> bool:
    """Vital's GUI shows the rates of LFOs, random LFOs, chorus, flanger, phaser and delay as periods
    (``2**-value`` s). Vita does not expose Vital's ``display_invert``; this rule picks exactly the
    controls whose text is ``1 / 2**value`` (``tests/test_params.py`` checks every control's display
    against Vita's own text)."""
    return scale == "Exponential" and units == "secs" and name.endswith("_frequency")


@functools.cache
def control_catalog() -> Mapping[str, ControlInfo]:
    """Details of every Vital control, read once from Vita (772 controls in vita 0.1.0)."""
    import vita

    synth = vita.Synth()
    catalog = {}
    for name in synth.get_controls():
        d = synth.get_control_details(name)
        catalog[name] = ControlInfo(
            name=name,
            min=float(d.min),
            max=float(d.max),
            default=float(d.default_value),
            is_discrete=bool(d.is_discrete),
            scale=str(d.scale).rsplit(".", 1)[-1],
            options=tuple(d.options),
            display_multiply=float(d.display_multiply),
            post_offset=float(d.post_offset),
            units=str(d.display_units).strip(),
            display_name=str(d.display_name),
            display_invert=_display_invert(name, str(d.scale).rsplit(".", 1)[-1], str(d.display_units).strip()),
        )
    return catalog


@functools.cache
def modulation_sources() -> tuple[str, ...]:
    import vita

    return tuple(vita.get_modulation_sources())


@functools.cache
def modulation_destinations() -> tuple[str, ...]:
    import vita

    return tuple(vita.get_modulation_destinations())


@dataclass(frozen=True)
class Parameter:
    """One dimension of a space.

    ``low``/``high`` are in Vital's stored (knob) units for controls; for categorical and integer
    parameters ``options`` lists the allowed values' names, one per integer step from ``low``.
    ``prior_low``/``prior_high`` bound random draws in normalised units; ``p_on`` is the chance a
    toggle is drawn on.
    """

    name: str
    kind: Kind
    low: float
    high: float
    default: float
    group: str
    options: tuple[str, ...] = ()
    scale: str = "Linear"
    display_multiply: float = 1.0
    post_offset: float = 0.0
    units: str = ""
    display_invert: bool = False
    prior_low: float = 0.0
    prior_high: float = 1.0
    p_on: float = 0.5

    @property
    def is_discrete(self) -> bool:
        return self.kind is not Kind.CONTINUOUS

    @property
    def n_values(self) -> int:
        """Number of distinct values of a discrete parameter."""
        return int(round(self.high - self.low)) + 1

    @property
    def width(self) -> int:
        """Dimensions this parameter takes in the action vector."""
        return self.n_values if self.kind is Kind.CATEGORICAL else 1

    @property
    def lfo_index(self) -> int | None:
        """For an LFO shape parameter, which LFO (0-based); else None."""
        m = _LFO_SHAPE_NAME.match(self.name)
        return int(m.group(1)) - 1 if m else None

    @property
    def wavetable_index(self) -> int | None:
        """For an oscillator's wavetable choice, which oscillator (0-based); else None."""
        m = _WAVETABLE_NAME.match(self.name)
        return int(m.group(1)) - 1 if m else None

    @property
    def is_control(self) -> bool:
        """False for parameters that are not Vital controls (modulation slots, LFO shapes, wavetables)."""
        return not (_MOD_PARAM.match(self.name) or _LFO_SHAPE_NAME.match(self.name) or _WAVETABLE_NAME.match(self.name))

    def clip(self, value: float) -> float:
        """Clamp to the range and snap discrete values to their integer grid."""
        v = min(max(float(value), self.low), self.high)
        return float(round(v)) if self.is_discrete else v

    def normalize(self, value: float) -> float:
        if self.high == self.low:
            return 0.0
        return (self.clip(value) - self.low) / (self.high - self.low)

    def denormalize(self, x: float) -> float:
        x = min(max(float(x), 0.0), 1.0)
        return self.clip(self.low + x * (self.high - self.low))

    def display(self, value: float) -> float:
        """The value in the unit Vital's GUI shows (seconds, Hz, dB, semitones...)."""
        v = float(value)
        if self.scale == "Quadratic":
            scaled = v * v
        elif self.scale == "Cubic":
            scaled = v * v * v
        elif self.scale == "Quartic":
            scaled = v**4
        elif self.scale == "SquareRoot":
            scaled = math.sqrt(max(v, 0.0))
        elif self.scale == "Exponential":
            scaled = 2.0**v
        else:
            scaled = v
        if self.display_invert:
            scaled = 1.0 / scaled if scaled else math.inf
        return scaled * self.display_multiply + self.post_offset

    def option_name(self, value: float) -> str:
        index = int(round(self.clip(value) - self.low))
        return self.options[index] if index < len(self.options) else str(int(self.clip(value)))


@dataclass(frozen=True)
class ActionSlice:
    name: str
    kind: Kind
    start: int
    stop: int
    group: str

    @property
    def slice(self) -> slice:
        return slice(self.start, self.stop)


def _group_of(name: str) -> str:
    m = _MOD_PARAM.match(name)
    if m:
        return f"modulation_{m.group(1)}"
    for prefix in ("osc_1", "osc_2", "osc_3", "filter_1", "filter_2", "filter_fx", "sample"):
        if name.startswith(prefix + "_"):
            return prefix
    for prefix, group in (("env_", "envelopes"), ("lfo_", "lfos"), ("random_", "lfos")):
        if name.startswith(prefix):
            return group
    effects = ("chorus", "compressor", "delay", "distortion", "eq", "flanger", "phaser", "reverb")
    if name.split("_")[0] in effects:
        return "effects"
    return "global"


def _kind_for(info: ControlInfo) -> Kind:
    if not info.is_discrete:
        return Kind.CONTINUOUS
    if info.options == ("Off", "On") or (not info.options and (info.min, info.max) == (0.0, 1.0)):
        return Kind.TOGGLE
    if info.options:
        return Kind.CATEGORICAL
    return Kind.INTEGER


def control_parameter(name: str, overrides: Mapping[str, Any] | None = None) -> Parameter:
    """A parameter for Vital control ``name``, from Vita's details plus YAML ``overrides``."""
    catalog = control_catalog()
    if name not in catalog:
        raise KeyError(f"'{name}' is not a Vital control (see vital_gym.params.control_catalog())")
    info = catalog[name]
    o = dict(overrides or {})
    low = float(o.pop("low", info.min))
    high = float(o.pop("high", info.max))
    if not (info.min <= low < high <= info.max) and not (low == high == info.min == info.max):
        raise ValueError(f"{name}: range [{low}, {high}] is not inside Vital's [{info.min}, {info.max}]")
    kind = Kind(o.pop("kind", _kind_for(info).value))
    options: tuple[str, ...] = ()
    if kind is Kind.CATEGORICAL:
        first = int(round(low - info.min))
        n = int(round(high - low)) + 1
        listed = list(info.options[first : first + n])
        options = tuple(listed + [str(int(low) + i) for i in range(len(listed), n)])
    default = min(max(info.default, low), high)
    return Parameter(
        name=name,
        kind=kind,
        low=low,
        high=high,
        default=default,
        group=o.pop("group", _group_of(name)),
        options=options,
        scale=info.scale,
        display_multiply=info.display_multiply,
        post_offset=info.post_offset,
        units=info.units,
        display_invert=info.display_invert,
        **_prior_fields(name, o),
    )


def _prior_fields(name: str, o: dict[str, Any]) -> dict[str, float]:
    prior = dict(o.pop("prior", {}) or {})
    if o:
        raise ValueError(f"{name}: unknown keys {sorted(o)}")
    fields_ = {
        "prior_low": float(prior.pop("low", 0.0)),
        "prior_high": float(prior.pop("high", 1.0)),
        "p_on": float(prior.pop("p_on", 0.5)),
    }
    if prior:
        raise ValueError(f"{name}: unknown prior keys {sorted(prior)}")
    if not 0.0 <= fields_["prior_low"] <= fields_["prior_high"] <= 1.0:
        raise ValueError(f"{name}: prior low/high must satisfy 0 <= low <= high <= 1 (normalised units)")
    if not 0.0 <= fields_["p_on"] <= 1.0:
        raise ValueError(f"{name}: prior p_on must be in [0, 1]")
    return fields_


def choice_parameter(name: str, options: Sequence[str], group: str, overrides: Mapping[str, Any] | None = None) -> Parameter:
    """A categorical parameter that is not a Vital control: one of ``options``, the first by default."""
    return Parameter(
        name=name,
        kind=Kind.CATEGORICAL,
        low=0.0,
        high=float(len(options) - 1),
        default=0.0,
        group=group,
        options=tuple(options),
        **_prior_fields(name, dict(overrides or {})),
    )


def lfo_shape_parameter(name: str, overrides: Mapping[str, Any] | None = None) -> Parameter:
    return choice_parameter(name, tuple(LFO_SHAPES), "lfos", overrides)


def wavetable_parameter(name: str, bank: WavetableBank, overrides: Mapping[str, Any] | None = None) -> Parameter:
    m = _WAVETABLE_NAME.match(name)
    if m is None or not 1 <= int(m.group(1)) <= 3:
        raise ValueError(f"'{name}' is not an oscillator's wavetable (osc_1_wavetable .. osc_3_wavetable)")
    return choice_parameter(name, bank.names, f"osc_{m.group(1)}", overrides)


def modulation_parameters(slot: int, sources: Sequence[str], destinations: Sequence[str]) -> list[Parameter]:
    src = (NO_SOURCE, *sources)
    group = f"modulation_{slot}"
    return [
        Parameter(f"mod_{slot}_source", Kind.CATEGORICAL, 0.0, float(len(src) - 1), 0.0, group, src),
        Parameter(
            f"mod_{slot}_destination",
            Kind.CATEGORICAL,
            0.0,
            float(len(destinations) - 1),
            0.0,
            group,
            tuple(destinations),
        ),
        Parameter(f"mod_{slot}_amount", Kind.CONTINUOUS, -1.0, 1.0, 0.0, group),
    ]


@dataclass(frozen=True)
class ModulationConfig:
    slots: int = 0
    sources: tuple[str, ...] = ()
    destinations: tuple[str, ...] = ()
    p_connected: float = 0.3


@dataclass(frozen=True)
class ParameterSpace:
    """An ordered set of parameters, with the base preset that fixes everything outside it."""

    name: str
    parameters: tuple[Parameter, ...]
    modulation: ModulationConfig = field(default_factory=ModulationConfig)
    base_preset: Path | None = None
    description: str = ""
    wavetables: WavetableBank | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, name_or_path: str | Path) -> ParameterSpace:
        """Load a shipped space by name (``core``, ``full``: :func:`vital_gym.resources.find_config`) or a
        YAML file path."""
        path = find_config("params", name_or_path)
        with path.open() as f:
            spec = yaml.safe_load(f)
        if not isinstance(spec, dict):
            raise ValueError(f"{path}: a parameter space file must be a YAML mapping")
        return cls.from_dict(spec, origin=path)

    @classmethod
    def from_spec(cls, spec: str | Path | Mapping[str, Any] | ParameterSpace) -> ParameterSpace:
        """A space from what configs and manifests record: a name, a YAML path, or the YAML's mapping."""
        if isinstance(spec, ParameterSpace):
            return spec
        return cls.from_dict(spec) if isinstance(spec, Mapping) else cls.load(spec)

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any], origin: Path | None = None) -> ParameterSpace:
        where = str(origin or "<dict>")
        spec = dict(spec)
        catalog = control_catalog()
        priors: dict[str, Any] = dict(spec.get("priors") or {})
        params: list[Parameter] = []
        bank = None
        if spec.get("wavetables"):
            bank_spec: str | Path = str(spec["wavetables"])
            if "/" in bank_spec or bank_spec.endswith(".npz"):  # a path; else a shipped bank's name
                bank_spec = _beside(origin, bank_spec)
            try:
                bank = load_bank(bank_spec)
            except (FileNotFoundError, WavetableError) as e:
                raise ValueError(f"{where}: wavetables: {e}") from None

        entries: list[tuple[str, dict[str, Any]]] = []
        for entry in spec.get("parameters") or []:
            if isinstance(entry, str):
                entries.append((entry, {}))
            elif isinstance(entry, dict) and "name" in entry:
                e = dict(entry)
                entries.append((e.pop("name"), e))
            else:
                raise ValueError(f"{where}: parameter entry {entry!r} must be a name or a mapping with 'name'")
        if "include_all_except" in spec:
            patterns = [re.compile(p) for p in spec["include_all_except"]]
            listed = {n for n, _ in entries}
            entries += [(n, {}) for n in catalog if n not in listed and not any(p.search(n) for p in patterns)]
        seen = set()
        for name, overrides in entries:
            if name in seen:
                raise ValueError(f"{where}: parameter '{name}' listed twice")
            seen.add(name)
            if name in priors:
                overrides = {**overrides, "prior": priors.pop(name)}
            try:
                if _LFO_SHAPE_NAME.match(name):
                    params.append(lfo_shape_parameter(name, overrides))
                elif _WAVETABLE_NAME.match(name):
                    if bank is None:
                        raise ValueError(f"'{name}' needs a wavetable bank: add 'wavetables: <bank name or .npz path>'")
                    params.append(wavetable_parameter(name, bank, overrides))
                else:
                    params.append(control_parameter(name, overrides))
            except (KeyError, ValueError) as e:
                raise ValueError(f"{where}: {e}") from None
        if priors:
            raise ValueError(f"{where}: priors for parameters not in the space: {sorted(priors)}")

        mod = dict(spec.get("modulation") or {})
        slots = int(mod.get("slots", 0))
        sources_spec = mod.get("sources", "all")
        all_sources = modulation_sources()
        if sources_spec == "all":
            sources = tuple(s for s in all_sources if s not in RANDOM_SOURCES)
        else:
            sources = tuple(sources_spec)
        bad = [s for s in sources if s not in all_sources]
        if bad:
            raise ValueError(f"{where}: unknown modulation sources {bad}; Vital has {list(all_sources)}")
        dest_spec = mod.get("destinations", [])
        all_dest = modulation_destinations()
        if dest_spec == "all":
            excluded = [re.compile(p) for p in mod.get("exclude_destinations", [])]
            destinations = tuple(d for d in all_dest if not any(p.search(d) for p in excluded))
        else:
            destinations = tuple(dest_spec)
        bad = [d for d in destinations if d not in all_dest]
        if bad:
            raise ValueError(f"{where}: unknown modulation destinations {bad}")
        if slots and (not sources or not destinations):
            raise ValueError(f"{where}: modulation slots need at least one source and one destination")
        if slots > 64:
            raise ValueError(f"{where}: Vital has 64 modulation slots; {slots} asked")
        modulation = ModulationConfig(slots, sources, destinations, float(mod.get("p_connected", 0.3)))
        for i in range(1, slots + 1):
            params += modulation_parameters(i, sources, destinations)

        base = spec.get("base_preset")
        base_path = None
        if base:
            base_path = _beside(origin, base)
            if not base_path.is_file():
                raise FileNotFoundError(f"{where}: base preset {base_path} not found")
        return cls(
            name=str(spec.get("name", origin.stem if origin else "space")),
            parameters=tuple(params),
            modulation=modulation,
            base_preset=base_path,
            description=str(spec.get("description", "")),
            wavetables=bank,
        )

    # ------------------------------------------------------------------ discrete values
    @staticmethod
    def discrete_index(normalised: Any, n_values: int) -> Any:
        """The option (or step) index of a normalised discrete value, which stores index ``k`` of ``n_values``
        as ``k / (n_values - 1)``: ``round(normalised * (n_values - 1))``, halves to even. A float gives an
        int; a numpy array int64 and a torch tensor a long tensor, of the same shape."""
        scaled = normalised * (n_values - 1)
        if isinstance(scaled, (float, int)):
            return int(round(scaled))
        if hasattr(scaled, "long"):  # a torch tensor; torch is not needed to read a space
            return scaled.round().long()
        return np.round(scaled).astype(np.int64)

    @staticmethod
    def discrete_value(index: Any, n_values: int) -> Any:
        """The normalised value of option (or step) ``index`` of ``n_values``: ``index / (n_values - 1)``
        (0 when there is a single value)."""
        return index / max(n_values - 1, 1)

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self.parameters)

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parameters)

    @functools.cached_property
    def index(self) -> Mapping[str, int]:
        return {n: i for i, n in enumerate(self.names)}

    def __getitem__(self, name: str) -> Parameter:
        return self.parameters[self.index[name]]

    def __contains__(self, name: object) -> bool:
        return name in self.index

    @functools.cached_property
    def layout(self) -> tuple[ActionSlice, ...]:
        """Where each parameter lives in the action vector."""
        out, start = [], 0
        for p in self.parameters:
            out.append(ActionSlice(p.name, p.kind, start, start + p.width, p.group))
            start += p.width
        return tuple(out)

    @property
    def action_dim(self) -> int:
        return self.layout[-1].stop if self.layout else 0

    @functools.cached_property
    def groups(self) -> Mapping[str, tuple[str, ...]]:
        """Parameter names per group (each oscillator, filter, envelopes, LFOs, effects, global, slot)."""
        out: dict[str, list[str]] = {}
        for p in self.parameters:
            out.setdefault(p.group, []).append(p.name)
        return {g: tuple(v) for g, v in out.items()}

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of everything that defines the space (names, kinds, ranges, options, base preset)."""
        payload = {
            "parameters": [(p.name, p.kind.value, p.low, p.high, p.options) for p in self.parameters],
            "base": self.base_preset.read_bytes().hex() if self.base_preset else None,
        }
        if self.wavetables is not None:
            payload["wavetables"] = self.wavetables.fingerprint
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ vectors
    def defaults(self) -> np.ndarray:
        """Parameter vector of each parameter's Vital default (modulation slots empty)."""
        return np.array([p.normalize(p.default) for p in self.parameters], dtype=np.float32)

    def sample(self, rng: np.random.Generator, prior: bool = True) -> np.ndarray:
        """A random parameter vector: uniform in normalised coordinates, or inside each prior."""
        x = np.empty(len(self), dtype=np.float32)
        for i, p in enumerate(self.parameters):
            if p.kind is Kind.TOGGLE:
                x[i] = float(rng.random() < (p.p_on if prior else 0.5))
            elif p.kind is Kind.CONTINUOUS:
                lo, hi = (p.prior_low, p.prior_high) if prior else (0.0, 1.0)
                x[i] = rng.uniform(lo, hi)
            else:
                n = p.n_values
                lo, hi = (p.prior_low, p.prior_high) if prior else (0.0, 1.0)
                first = int(math.ceil(lo * (n - 1) - 1e-9))
                last = int(math.floor(hi * (n - 1) + 1e-9))
                x[i] = rng.integers(first, max(first, last) + 1) / max(n - 1, 1)
        if prior and self.modulation.slots:
            for slot in range(1, self.modulation.slots + 1):
                if rng.random() >= self.modulation.p_connected:
                    x[self.index[f"mod_{slot}_source"]] = 0.0
        return x

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Snap discrete entries of a parameter vector to their grid (and clip to [0, 1]).

        Vectorised form of ``p.normalize(p.denormalize(x[i]))`` for each discrete parameter (the matcher
        decodes a hundred candidates per target): the same float64 arithmetic and round-half-to-even."""
        x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
        out = x.copy()
        index, low, high = self._discrete_grid
        v = np.clip(np.round(np.clip(low + x[..., index].astype(np.float64) * (high - low), low, high)), low, high)
        span = high - low
        out[..., index] = np.divide(v - low, span, out=np.zeros_like(v), where=span != 0)
        return out

    @functools.cached_property
    def _discrete_grid(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices, lows and highs of the discrete parameters."""
        discrete = [(i, p.low, p.high) for i, p in enumerate(self.parameters) if p.is_discrete]
        index, low, high = (np.array(v) for v in zip(*discrete)) if discrete else (np.zeros(0, int), np.zeros(0), np.zeros(0))
        return index.astype(int), low.astype(np.float64), high.astype(np.float64)

    def check_vector(self, x: np.ndarray, what: str = "parameter vector") -> np.ndarray:
        x = np.asarray(x, dtype=np.float32)
        if x.shape != (len(self),):
            raise ValueError(f"{what} has shape {x.shape}; space '{self.name}' expects ({len(self)},)")
        if not np.all(np.isfinite(x)):
            bad = [self.names[i] for i in np.flatnonzero(~np.isfinite(x))[:5]]
            raise ValueError(f"{what} has NaN/Inf entries (first: {bad})")
        return x

    # ------------------------------------------------------------------ actions
    def action_to_vector(self, action: np.ndarray) -> np.ndarray:
        """Decode an action in [-1, 1]^D: categorical blocks by argmax, the rest linearly."""
        a = np.asarray(action, dtype=np.float32)
        if a.shape != (self.action_dim,):
            raise ValueError(f"action has shape {a.shape}; space '{self.name}' expects ({self.action_dim},)")
        if not np.all(np.isfinite(a)):
            raise ValueError("action has NaN/Inf entries")
        a = np.clip(a, -1.0, 1.0)
        x = np.empty(len(self), dtype=np.float32)
        for i, (p, s) in enumerate(zip(self.parameters, self.layout)):
            if p.kind is Kind.CATEGORICAL:
                x[i] = self.discrete_value(int(np.argmax(a[s.slice])), p.n_values)
            elif p.kind is Kind.TOGGLE:
                x[i] = float(a[s.start] > 0.0)
            else:
                x[i] = (a[s.start] + 1.0) / 2.0
        return self.quantize(x)

    def vector_to_action(self, x: np.ndarray) -> np.ndarray:
        """Encode a parameter vector as an action; categorical blocks become +1 / -1 one-hots."""
        x = self.check_vector(x)
        a = np.empty(self.action_dim, dtype=np.float32)
        for i, (p, s) in enumerate(zip(self.parameters, self.layout)):
            if p.kind is Kind.CATEGORICAL:
                block = -np.ones(p.width, dtype=np.float32)
                block[self.discrete_index(float(x[i]), p.n_values)] = 1.0
                a[s.slice] = block
            elif p.kind is Kind.TOGGLE:
                a[s.start] = 1.0 if x[i] >= 0.5 else -1.0
            else:
                a[s.start] = 2.0 * float(np.clip(x[i], 0.0, 1.0)) - 1.0
        return a

    def describe_vector(self, x: np.ndarray) -> dict[str, Any]:
        """Human-readable values: option names for discrete parameters, display units otherwise."""
        x = self.check_vector(x)
        out: dict[str, Any] = {}
        for xi, p in zip(x, self.parameters):
            v = p.denormalize(float(xi))
            if p.kind in (Kind.CATEGORICAL,):
                out[p.name] = p.option_name(v)
            elif p.kind is Kind.TOGGLE:
                out[p.name] = bool(v)
            elif p.kind is Kind.INTEGER:
                out[p.name] = int(round(p.display(v)))  # chorus voices: Vital shows 4x the value
            else:
                out[p.name] = round(p.display(v), 4)
        return out


def _beside(origin: Path | None, path: str | Path) -> Path:
    """A path a space's YAML names: relative paths are relative to the YAML file's folder."""
    path = Path(path)
    return path if path.is_absolute() or origin is None else (origin.parent / path).resolve()


def available_spaces() -> list[str]:
    return config_names("params")


def iter_slots(space: ParameterSpace) -> Iterable[int]:
    return range(1, space.modulation.slots + 1)
