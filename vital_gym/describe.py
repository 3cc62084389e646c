"""A plain-language description of a preset, generated deterministically from its parameter vector.

What a sound designer reads to rebuild or tweak the sound by hand: which sources play and with what
waves, the filters, the amplitude envelope, the envelopes and LFOs that modulate something, the effects
that are on, and the modulation routes. Only the parameters the space holds are described; values are in the units Vital's
interface shows (a filter cutoff in semitones from middle C, with its frequency; an LFO in seconds per
cycle, or its tempo division when synced). A route from an envelope, LFO, random source or macro whose
own settings the space does not hold is marked: that source plays as the base preset set it.
"""

from __future__ import annotations

import re

import numpy as np

from vital_gym.params import Kind, ParameterSpace
from vital_gym.preset import Preset, PresetCodec


def _fmt(space: ParameterSpace, values: dict, name: str) -> str | None:
    if name not in values:
        return None
    p = space[name]
    v = values[name]
    if isinstance(v, bool) or p.kind is Kind.CATEGORICAL:
        return str(v)
    if isinstance(v, int):
        return f"{v:+d}" if "transpose" in name else str(v)
    unit = f" {p.units}" if p.units else ""
    return f"{v:.3g}{unit}"


def _cutoff_hz(semitones: float) -> float:
    """Vital's cutoff is shown in semitones from middle C (MIDI 60)."""
    return 440.0 * 2.0 ** ((semitones + 60.0 - 69.0) / 12.0)


def _rate(space: ParameterSpace, values: dict, prefix: str, period: str = "a cycle every") -> str | None:
    """How fast an LFO or a time-based effect runs, the way its sync mode sets it: a period in seconds
    (``period`` names it), a tempo division, or the note played (an LFO's Keytrack)."""
    sync = values.get(f"{prefix}_sync")
    if sync is not None and str(sync).startswith("Tempo"):
        tempo = values.get(f"{prefix}_tempo")
        feel = {"Tempo Dotted": " dotted", "Tempo Triplets": " triplets"}.get(str(sync), "")
        return f"synced to tempo at {tempo}{feel}" if tempo is not None else f"synced to tempo{feel}"
    if sync == "Keytrack":
        return "keytracked (its rate follows the note played)"
    seconds = values.get(f"{prefix}_frequency")
    if seconds is None:
        return None
    return f"{period} {_fmt(space, values, f'{prefix}_frequency')}" + (f" ({1.0 / seconds:.3g} Hz)" if seconds > 0 else "")


def _settings(space: ParameterSpace, values: dict, prefix: str, keys: tuple[str, ...]) -> list[str]:
    """``"name value"`` for each of ``prefix``'s ``keys`` the space holds, a cutoff with its frequency."""
    parts = []
    for k in (k for k in keys if f"{prefix}_{k}" in values):
        hz = f" ({_cutoff_hz(values[f'{prefix}_{k}']):.0f} Hz)" if k == "cutoff" else ""
        parts.append(f"{k.replace('_', ' ').replace('dry wet', 'dry/wet')} {_fmt(space, values, f'{prefix}_{k}')}{hz}")
    return parts


# Vital's effects in its default chain order: (control prefix, name, what says most about the sound, the
# word for its time when it has one)
_EFFECTS = (
    ("chorus", "chorus", ("voices", "dry_wet"), "a cycle every"),
    ("compressor", "multiband compressor", ("mix",), None),
    ("delay", "delay", ("style", "feedback", "dry_wet"), "time"),
    ("distortion", "distortion", ("type", "drive", "mix"), None),
    ("eq", "EQ", (), None),
    ("filter_fx", "filter", ("model", "cutoff", "mix"), None),
    ("flanger", "flanger", ("feedback", "dry_wet"), "a cycle every"),
    ("phaser", "phaser", ("feedback", "dry_wet"), "a cycle every"),
    ("reverb", "reverb", ("decay_time", "size", "dry_wet"), None),
)


def _effects(space: ParameterSpace, values: dict) -> str | None:
    """The effects that are on, each with its main settings; None when the space holds no effect switch."""
    if not any(f"{fx}_on" in values for fx, *_ in _EFFECTS):
        return None
    on = []
    for fx, name, settings, period in _EFFECTS:
        if not values.get(f"{fx}_on"):
            continue
        parts = _settings(space, values, fx, settings)
        rate = _rate(space, values, fx, period) if period else None
        on.append(name + (f" ({', '.join(([rate] if rate else []) + parts)})" if rate or parts else ""))
    return "Effects: " + ("; ".join(on) if on else "none") + "."


def _filters_off(values: dict, destination: str) -> str:
    """A remark when every filter a destination names is off: Vital then passes the sound through unfiltered."""
    filters = re.findall(r"\d", destination) if destination.startswith("FILTER") else []
    known = [values.get(f"filter_{n}_on") for n in filters]
    return " (off: unfiltered)" if filters and all(on is False for on in known) else ""


_CONFIGURABLE_SOURCE = re.compile(r"(env|lfo|random)_\d+|macro_control_\d+")  # sources with settings of their own


def _source_label(space: ParameterSpace, source: str, unset: str) -> str:
    """``source``, marked ``[unset]`` when the space does not set it."""
    configurable = _CONFIGURABLE_SOURCE.fullmatch(source)
    if configurable and not any(p.name == source or p.name.startswith(f"{source}_") for p in space.parameters):
        return f"{source} [{unset}]"
    return source


def _envelope_character(values: dict, env: str) -> str:
    attack, decay = values.get(f"{env}_attack"), values.get(f"{env}_decay")
    sustain, release = values.get(f"{env}_sustain"), values.get(f"{env}_release")
    if attack is None or sustain is None:
        return ""
    words = []
    words.append("a slow, swelling attack" if attack > 0.3 else "a soft attack" if attack > 0.05 else "an immediate attack")
    if sustain < 0.15 and decay is not None:
        words.append("a plucked decay" if decay < 0.6 else "a long decay to silence")
    else:
        words.append("a sustained body" if sustain > 0.6 else "a partly sustained body")
    if release is not None:
        words.append("a long release tail" if release > 0.5 else "a short release")
    return ", ".join(words)


def describe_preset(space: ParameterSpace, x: np.ndarray, unset: str | None = None) -> str:
    """Sentences, one per part of the synth, for the parameter vector ``x`` of ``space``.

    ``unset`` marks a route's source whose settings the space does not hold; by default it says where a
    preset written from ``x`` takes them from ("init settings", or "base preset settings").
    """
    unset = unset or f"{'base preset' if space.base_preset else 'init'} settings"
    values = space.describe_vector(x)
    lines: list[str] = []
    for i in (1, 2, 3):
        osc = f"osc_{i}"
        if not values.get(f"{osc}_on"):
            continue
        parts = [f"level {_fmt(space, values, f'{osc}_level')}"] if f"{osc}_level" in values else []
        if values.get(f"{osc}_transpose"):
            parts.append(f"transposed {_fmt(space, values, f'{osc}_transpose')} semitones")
        if f"{osc}_wavetable" in values:
            parts.append(f"wavetable '{values[f'{osc}_wavetable']}'")
        if f"{osc}_wave_frame" in values:
            parts.append(f"wavetable frame {_fmt(space, values, f'{osc}_wave_frame')}")
        voices = values.get(f"{osc}_unison_voices")
        if isinstance(voices, int) and voices > 1:
            parts.append(f"{voices} unison voices detuned {_fmt(space, values, f'{osc}_unison_detune')}")
        for effect, label in (("distortion", "warp"), ("spectral_morph", "spectral morph")):
            kind = values.get(f"{osc}_{effect}_type")
            if kind is not None and str(kind).lower() not in ("none", "0"):
                parts.append(f"{label} '{kind}' at {_fmt(space, values, f'{osc}_{effect}_amount')}")
        if f"{osc}_destination" in values:
            parts.append(f"into {values[f'{osc}_destination']}{_filters_off(values, values[f'{osc}_destination'])}")
        lines.append(f"Oscillator {i}: " + ", ".join(parts) + ".")
    if values.get("sample_on"):
        lines.append(f"Sampler (noise) on at level {_fmt(space, values, 'sample_level')}.")
    if not lines:
        lines.append("No oscillator or sampler is on: the preset is silent.")
    for i in (1, 2):
        f = f"filter_{i}"
        if not values.get(f"{f}_on"):
            continue
        parts = [f"{values.get(f'{f}_model', '')} filter".strip()]
        if f"{f}_style" in values:
            parts[0] += f" ({values[f'{f}_style']})"
        parts += _settings(space, values, f, ("cutoff", "resonance", "drive", "mix"))
        lines.append(f"Filter {i}: " + ", ".join(parts) + ".")
    routes = PresetCodec(space).routes(x) if space.modulation.slots else []
    used = {source for source, _, _ in routes}
    for i in range(1, 7):  # envelope 1 shapes the amplitude; the others sound only through a route
        env = f"env_{i}"
        character = _envelope_character(values, env)
        if character and (i == 1 or env in used):
            stages = ", ".join(
                f"{k} {_fmt(space, values, f'{env}_{k}')}"
                for k in ("delay", "attack", "hold", "decay", "sustain", "release")
                if f"{env}_{k}" in values and (k not in ("delay", "hold") or values[f"{env}_{k}"] >= 0.001)  # 1 ms: audible
            )
            lines.append(f"{'Amplitude envelope' if i == 1 else f'Envelope {i}'}: {character} ({stages}).")
    for i in range(1, 9):  # an LFO sounds only through a route (without slots, the base preset's routes)
        lfo = f"lfo_{i}"
        held = any(f"{lfo}_{k}" in values for k in ("shape", "frequency", "sync"))
        if held and (lfo in used or not space.modulation.slots):
            shape = values.get(f"{lfo}_shape")
            parts = [f"shape '{shape}'"] if shape is not None else []
            rate = _rate(space, values, lfo)
            if rate:
                parts.append(rate)
            lines.append(f"LFO {i}: " + ", ".join(parts) + ".")
    effects = _effects(space, values)
    if effects:
        lines.append(effects)
    if routes:
        lines.append("Modulation: " + "; ".join(f"{_source_label(space, s, unset)} -> {d} ({a:+.2f})" for s, d, a in routes) + ".")
    elif space.modulation.slots:
        lines.append("Modulation: none.")
    return "\n".join(lines)


def describe_omissions(codec: PresetCodec, preset: Preset) -> str:
    """What a description of ``preset`` in the terms of ``codec``'s space leaves out: the routes it cannot
    hold, values clipped to its ranges, and the settings outside it that differ from its base preset."""
    space, x = codec.space, codec.from_preset(preset)
    held = {p.name for p in space.parameters}
    base = codec.base.settings
    other = sorted(k for k, v in preset.settings.items() if isinstance(v, (int, float)) and k not in held and base.get(k) != v)
    clipped = [
        p.name
        for i, p in enumerate(space.parameters)
        if p.is_control
        and p.name in preset.settings
        and abs(p.denormalize(float(x[i])) - float(preset.settings[p.name])) > 1e-4 * (p.high - p.low)  # not float32 rounding
    ]
    routes = [m for m in preset.settings.get("modulations", []) if m.get("source")]
    return (
        f"in the terms of space '{space.name}': {len(codec.routes(x))} of the preset's {len(routes)} routes; "
        + (f"{', '.join(clipped)} clipped to the space's ranges; " if clipped else "")
        + f"{len(other)} other settings differ from the {'base' if space.base_preset else 'init'} preset and are not described"
        + (f", e.g. {', '.join(other[:6])}" if other else "")
    )
