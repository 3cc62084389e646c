"""Vital presets: validation, ``.vital`` files, and the codec between parameter vectors and presets.

A ``.vital`` file is the JSON Vital saves: metadata plus ``settings``, which holds one number per control,
the modulation routing (``settings["modulations"]``, a list whose i-th entry pairs with the controls
``modulation_<i+1>_amount`` etc.), and blobs (wavetables, LFO shapes, the sample).

Safety. Vita loads a preset with an out-of-range value (``filter_1_cutoff = 1e6``) and then crashes the
whole process on render. So nothing reaches Vita unvalidated: :func:`validate_settings` checks every
control against Vita's details. Non-numbers, NaN and Inf are rejected (:class:`PresetError`); finite
values outside the range are clamped and discrete values rounded, and each change is listed in the
returned report (human presets saved by Vital carry values such as 1.0047 in a 0..1 control). Pass
``on_out_of_range="raise"`` to reject those too.
"""

from __future__ import annotations

import copy
import functools
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vital_gym.files import atomic_file
from vital_gym.params import (
    LFO_SHAPES,
    NO_SOURCE,
    ParameterSpace,
    control_catalog,
    modulation_destinations,
    modulation_sources,
)

MAX_MODULATIONS = 64
_SLOT_CONTROLS = ("amount", "bipolar", "power", "stereo", "bypass")


class PresetError(ValueError):
    """A preset that cannot be used: names the preset and what is wrong."""


@dataclass(frozen=True)
class Clamp:
    control: str
    given: float
    used: float


@dataclass
class Preset:
    """A Vital preset (the JSON of a ``.vital`` file) that has passed validation.

    Presets built from one another share their blobs (wavetables, sample, LFO shapes) instead of copying
    them; change control values freely, and use :meth:`copy` before editing a blob in place.
    """

    data: dict[str, Any]
    name: str = "preset"
    clamped: tuple[Clamp, ...] = field(default=())

    @property
    def settings(self) -> dict[str, Any]:
        return self.data["settings"]

    @property
    def modulations(self) -> list[tuple[str, str]]:
        """The connected (source, destination) pairs, in Vital's slot order."""
        return [(m.get("source", ""), m.get("destination", "")) for m in self.settings.get("modulations", []) if m.get("source")]

    # ------------------------------------------------------------------ I/O
    @classmethod
    def from_json(cls, text: str | bytes, name: str = "preset", on_out_of_range: Literal["clamp", "raise"] = "clamp") -> Preset:
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PresetError(f"{name}: not valid JSON ({e})") from None
        return cls.from_dict(data, name=name, on_out_of_range=on_out_of_range)

    @classmethod
    def from_dict(cls, data: Any, name: str = "preset", on_out_of_range: Literal["clamp", "raise"] = "clamp") -> Preset:
        if not isinstance(data, dict) or not isinstance(data.get("settings"), dict):
            raise PresetError(f"{name}: a Vital preset is a JSON object with a 'settings' object")
        # Validation only replaces top-level control values, so a shallow copy keeps the caller's dict
        # intact while the blobs (wavetables, sample: most of a preset's size) are shared, not copied.
        data = {**data, "settings": dict(data["settings"])}
        clamped = validate_settings(data["settings"], name=name, on_out_of_range=on_out_of_range)
        return cls(data=data, name=name, clamped=tuple(clamped))

    @classmethod
    def load(cls, path: str | Path, on_out_of_range: Literal["clamp", "raise"] = "clamp") -> Preset:
        path = Path(path)
        if not path.is_file():
            raise PresetError(f"{path}: no such preset file")
        try:
            text = path.read_bytes()
        except OSError as e:
            raise PresetError(f"{path}: cannot read ({e})") from None
        preset = cls.from_json(text, name=str(path), on_out_of_range=on_out_of_range)
        preset.data.setdefault("preset_name", path.stem)
        return preset

    def to_json(self) -> str:
        return json.dumps(self.data)

    def save(self, path: str | Path) -> Path:
        """Write a ``.vital`` file atomically (a crash never leaves a half-written preset)."""
        path = Path(path)
        if path.suffix != ".vital":
            path = path.with_suffix(".vital")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(path) as f:
            f.write(self.to_json().encode())
        return path

    def copy(self) -> Preset:
        """An independent deep copy."""
        return Preset(copy.deepcopy(self.data), self.name, self.clamped)

    def with_values(self, values: Mapping[str, float]) -> Preset:
        """This preset with some control values replaced (validated; blobs shared)."""
        data = {**self.data, "settings": {**self.settings, **values}}
        return Preset.from_dict(data, name=self.name)


def validate_settings(settings: dict[str, Any], name: str = "preset", on_out_of_range: Literal["clamp", "raise"] = "clamp") -> list[Clamp]:
    """Check (and clamp in place) every control value and modulation route; see the module docstring."""
    catalog = control_catalog()
    clamped: list[Clamp] = []
    for key, value in settings.items():
        info = catalog.get(key)
        if info is None:
            continue  # blobs and keys Vital keeps for itself (wavetables, lfos, random_values, ...)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PresetError(f"{name}: control '{key}' must be a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise PresetError(f"{name}: control '{key}' is {value} (NaN/Inf would reach the synth)")
        used = min(max(float(value), info.min), info.max)
        if info.is_discrete:
            used = float(round(used))
        if used != value:
            if on_out_of_range == "raise" and not info.min <= value <= info.max:
                raise PresetError(f"{name}: control '{key}' = {value} is outside Vital's range [{info.min}, {info.max}]")
            settings[key] = used
            clamped.append(Clamp(key, float(value), used))
    mods = settings.get("modulations", [])
    if not isinstance(mods, list) or len(mods) > MAX_MODULATIONS:
        raise PresetError(f"{name}: 'modulations' must be a list of at most {MAX_MODULATIONS} entries")
    sources, destinations = set(modulation_sources()), set(modulation_destinations())
    for i, m in enumerate(mods):
        if not isinstance(m, dict):
            raise PresetError(f"{name}: modulation {i + 1} is not an object")
        src, dst = m.get("source", ""), m.get("destination", "")
        if not src and not dst:
            continue
        if src not in sources:
            raise PresetError(f"{name}: modulation {i + 1} has unknown source {src!r}")
        if dst not in destinations:
            raise PresetError(f"{name}: modulation {i + 1} has unknown destination {dst!r}")
    return clamped


@functools.cache
def _init_preset_json() -> str:
    import vita

    return vita.Synth().to_json()


def init_preset() -> Preset:
    """Vital's init preset, as Vita builds it."""
    return Preset.from_json(_init_preset_json(), name="init")


def lfo_shape_index(lfo: Mapping[str, Any]) -> int | None:
    """Which of :data:`LFO_SHAPES` an LFO entry is, or None for a custom shape."""
    for i, shape in enumerate(LFO_SHAPES.values()):
        if (
            list(lfo.get("points", [])) == shape["points"]
            and list(lfo.get("powers", [])) == shape["powers"]
            and bool(lfo.get("smooth", False)) == shape["smooth"]
        ):
            return i
    return None


class PresetCodec:
    """Parameter vector <-> :class:`Preset` for one :class:`ParameterSpace`.

    Controls outside the space keep the base preset's values. When the space has modulation slots they
    define the whole routing: slot k is the k-th connected route whose source and destination the space
    covers, written compactly from Vital's first modulation onwards (an empty slot is skipped, a route
    repeated by a later slot is dropped, since Vital holds one connection per pair).

    An ``osc_<i>_wavetable`` parameter writes its bank table into the preset (``settings["wavetables"]``).

    ``keep_base=True`` (refining a preset): every parameter whose value is still the base's own encoding
    (:attr:`base_vector`) keeps the base's own setting, so ``to_preset(base_vector)`` sounds exactly as the
    base does, and a search that moves some parameters changes only those. An oscillator whose choice is the
    entry its own table maps to (:meth:`vital_gym.wavetables.WavetableBank.index_of_vital`) keeps that own
    table, an LFO whose shape is unchanged keeps its own (custom) shape, a control outside the space's range
    keeps its value until moved, and while the slots' sources and destinations are the base's, the base's
    whole routing is kept (routes the space cannot hold included) with only the covered routes' amounts
    written. Any other choice is written as without it.
    """

    def __init__(self, space: ParameterSpace, base: Preset | None = None, keep_base: bool = False):
        self.space = space
        if base is None:
            base = Preset.load(space.base_preset) if space.base_preset else init_preset()
        self.base = base
        self._control_params = [(i, p) for i, p in enumerate(space.parameters) if p.is_control]
        self._lfo_params = [(i, p.lfo_index) for i, p in enumerate(space.parameters) if p.lfo_index is not None]
        self._wavetable_params = [(i, p.wavetable_index) for i, p in enumerate(space.parameters) if p.wavetable_index is not None]
        self.base_vector: np.ndarray | None = None  # with keep_base: the base's encoding; a value equal to it keeps the base's setting
        self._base_routes: list[int] = []  # with keep_base: the base's modulation index of slot k's route
        self._route_dims = np.array([space.index[f"mod_{k}_{c}"] for k in range(1, space.modulation.slots + 1) for c in ("source", "destination")], dtype=int)
        if keep_base:
            self.base_vector = self.from_preset(base)
            self._base_routes = self._covered_routes(base)[1]

    def to_preset(self, x: np.ndarray, name: str = "vital-gym") -> Preset:
        x = self.space.check_vector(x)
        settings = dict(self.base.settings)
        data = {**self.base.data, "preset_name": name, "settings": settings}
        kept = self._unchanged(x)
        for i, p in self._control_params:
            if not kept[i]:
                settings[p.name] = p.denormalize(float(x[i]))
        shapes = list(LFO_SHAPES.items())
        for i, lfo in self._lfo_params:
            if kept[i]:
                continue
            shape_name, shape = shapes[int(round(self.space.parameters[i].denormalize(float(x[i]))))]
            lfos = settings["lfos"] = list(settings.get("lfos") or [{} for _ in range(8)])
            lfos[lfo] = {
                "name": shape_name,
                "num_points": len(shape["points"]) // 2,
                "points": list(shape["points"]),
                "powers": list(shape["powers"]),
                "smooth": shape["smooth"],
            }
        if self._wavetable_params:
            bank = self.space.wavetables
            tables = settings["wavetables"] = list(settings.get("wavetables") or [])
            for i, osc in self._wavetable_params:
                entry = int(round(self.space.parameters[i].denormalize(float(x[i]))))
                while len(tables) <= osc:
                    tables.append(bank.vital(0))
                if not kept[i]:
                    tables[osc] = bank.vital(entry)
        if self.space.modulation.slots:
            if self.base_vector is not None and kept[self._route_dims].all():
                self._write_amounts(x, kept, settings)
            else:
                self._write_slots(x, settings)
        return Preset.from_dict(data, name=name)

    def _unchanged(self, x: np.ndarray) -> np.ndarray:
        """Per parameter: does ``x`` hold the base's own encoding there (always False without keep_base)?"""
        if self.base_vector is None:
            return np.zeros(len(self.space), dtype=bool)
        return x == self.base_vector  # both float32: check_vector's and from_preset's

    def _write_amounts(self, x: np.ndarray, kept: np.ndarray, settings: dict[str, Any]) -> None:
        """The base's routing kept; each moved slot amount written to the base modulation it encodes."""
        for slot, k in enumerate(self._base_routes, start=1):
            i = self.space.index[f"mod_{slot}_amount"]
            if not kept[i]:
                settings[f"modulation_{k + 1}_amount"] = self.space.parameters[i].denormalize(float(x[i]))

    def _table_entry(self, preset: Preset, osc: int) -> int:
        """The bank entry oscillator ``osc``'s table in ``preset`` maps to."""
        tables = preset.settings.get("wavetables") or []
        return self.space.wavetables.index_of_vital(tables[osc]) if osc < len(tables) else 0

    def routes(self, x: np.ndarray) -> list[tuple[str, str, float]]:
        """The modulation routes a vector asks for, compacted and de-duplicated as Vital will hold them."""
        routes: list[tuple[str, str, float]] = []
        for slot in range(1, self.space.modulation.slots + 1):
            src_p = self.space[f"mod_{slot}_source"]
            src = src_p.option_name(src_p.denormalize(float(x[self.space.index[src_p.name]])))
            if src == NO_SOURCE:
                continue
            dst_p = self.space[f"mod_{slot}_destination"]
            dst = dst_p.option_name(dst_p.denormalize(float(x[self.space.index[dst_p.name]])))
            if any((src, dst) == (s, d) for s, d, _ in routes):
                continue
            amt_p = self.space[f"mod_{slot}_amount"]
            routes.append((src, dst, amt_p.denormalize(float(x[self.space.index[amt_p.name]]))))
        return routes

    def canonical(self, x: np.ndarray) -> np.ndarray:
        """The vector's canonical form: quantised, connected slots first, repeated routes removed.

        Slot order carries no meaning in Vital, so vectors that differ only in it are the same preset;
        ``from_preset(to_preset(x)) == canonical(x)``.
        """
        x = self.space.quantize(self.space.check_vector(x))
        if not self.space.modulation.slots:
            return x
        return self._set_routes(x, self.routes(x))

    def _set_routes(self, x: np.ndarray, routes: list[tuple[str, str, float]]) -> np.ndarray:
        x = x.copy()
        sources, dests = self.space.modulation.sources, self.space.modulation.destinations
        for slot in range(1, self.space.modulation.slots + 1):
            src, dst, amount = routes[slot - 1] if slot <= len(routes) else (NO_SOURCE, dests[0], 0.0)
            src_index = 0 if src == NO_SOURCE else sources.index(src) + 1
            x[self.space.index[f"mod_{slot}_source"]] = self.space[f"mod_{slot}_source"].normalize(src_index)
            x[self.space.index[f"mod_{slot}_destination"]] = self.space[f"mod_{slot}_destination"].normalize(dests.index(dst))
            x[self.space.index[f"mod_{slot}_amount"]] = self.space[f"mod_{slot}_amount"].normalize(amount)
        return x

    def _write_slots(self, x: np.ndarray, settings: dict[str, Any]) -> None:
        routes = self.routes(x)
        catalog = control_catalog()
        mods = [{"source": "", "destination": ""} for _ in range(MAX_MODULATIONS)]
        for k in range(MAX_MODULATIONS):
            for c in _SLOT_CONTROLS:
                key = f"modulation_{k + 1}_{c}"
                if key in catalog:
                    settings[key] = catalog[key].default
        for k, (src, dst, amount) in enumerate(routes):
            mods[k] = {"source": src, "destination": dst}
            settings[f"modulation_{k + 1}_amount"] = amount
        settings["modulations"] = mods

    def from_preset(self, preset: Preset) -> np.ndarray:
        """The parameter vector of a preset (values outside the space's ranges are clipped to them)."""
        settings = preset.settings
        x = self.space.defaults()
        for i, p in self._control_params:
            if p.name in settings:
                x[i] = p.normalize(float(settings[p.name]))
        for i, lfo in self._lfo_params:
            lfos = settings.get("lfos", [])
            idx = lfo_shape_index(lfos[lfo]) if lfo < len(lfos) else None
            x[i] = self.space.parameters[i].normalize(float(idx or 0))
        for i, osc in self._wavetable_params:
            x[i] = self.space.parameters[i].normalize(float(self._table_entry(preset, osc)))
        if self.space.modulation.slots:
            x = self._set_routes(x, self._covered_routes(preset)[0])
        return x

    def _covered_routes(self, preset: Preset) -> tuple[list[tuple[str, str, float]], list[int]]:
        """The routes of ``preset`` the slots hold (source, destination, amount clipped to the slot's range),
        in the preset's order, at most one per slot, and the index of each in the preset's modulations."""
        sources, dests = self.space.modulation.sources, self.space.modulation.destinations
        routes: list[tuple[str, str, float]] = []
        indices: list[int] = []
        for k, m in enumerate(preset.settings.get("modulations", [])):
            src, dst = m.get("source", ""), m.get("destination", "")
            if src in sources and dst in dests and len(routes) < self.space.modulation.slots:
                amount = self.space[f"mod_{len(routes) + 1}_amount"].clip(float(preset.settings.get(f"modulation_{k + 1}_amount", 0.0)))
                routes.append((src, dst, amount))
                indices.append(k)
        return routes, indices

    def covered(self, preset: Preset) -> dict[str, bool]:
        """For each control parameter: does the space represent the preset's value exactly?"""
        out = {}
        for _, p in self._control_params:
            v = float(preset.settings.get(p.name, p.default))
            out[p.name] = p.low <= v <= p.high and (not p.is_discrete or v == round(v))
        return out
