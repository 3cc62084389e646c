"""A plain-language description of a preset, generated deterministically from its parameter vector.

What a sound designer reads to rebuild or tweak the sound by hand: which sources play and with what
waves, the filters, the shape of the amplitude envelope, the LFOs that modulate something, and the
modulation routes. Only the
parameters the space holds are described; values are in the units Vital's interface shows (a filter
cutoff in semitones from middle C, with its frequency; an LFO in seconds per cycle, or its tempo
division when synced). A route from an envelope, LFO, random source or macro whose own settings the
space does not hold is marked: that source plays as the base preset set it.
"""

from __future__ import annotations

import re

import numpy as np

from vital_gym.params import Kind, ParameterSpace
from vital_gym.preset import PresetCodec


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


_CONFIGURABLE_SOURCE = re.compile(r"(env|lfo|random)_\d+|macro_control_\d+")


def _cutoff_hz(semitones: float) -> float:
    """Vital's cutoff is shown in semitones from middle C (MIDI 60)."""
    return 440.0 * 2.0 ** ((semitones + 60.0 - 69.0) / 12.0)


def _lfo_rate(space: ParameterSpace, values: dict, lfo: str) -> str | None:
    """How fast the LFO runs, the way its sync mode sets it: a period, a tempo division, or the note."""
    sync = values.get(f"{lfo}_sync")
    if sync is not None and str(sync).startswith("Tempo"):
        tempo = values.get(f"{lfo}_tempo")
        feel = {"Tempo Dotted": " dotted", "Tempo Triplets": " triplets"}.get(str(sync), "")
        return f"synced to tempo at {tempo}{feel}" if tempo is not None else f"synced to tempo{feel}"
    if sync == "Keytrack":
        return "keytracked (its rate follows the note played)"
    period = values.get(f"{lfo}_frequency")
    if period is None:
        return None
    return f"a cycle every {_fmt(space, values, f'{lfo}_frequency')}" + (f" ({1.0 / period:.3g} Hz)" if period > 0 else "")


def _filters_off(values: dict, destination: str) -> str:
    """A remark when every filter a destination names is off: Vital then passes the sound through unfiltered."""
    filters = re.findall(r"\d", destination) if destination.startswith("FILTER") else []
    known = [values.get(f"filter_{n}_on") for n in filters]
    return " (off: unfiltered)" if filters and all(on is False for on in known) else ""


def _source_label(space: ParameterSpace, source: str) -> str:
    configurable = _CONFIGURABLE_SOURCE.fullmatch(source)
    if configurable and not any(p.name == source or p.name.startswith(f"{source}_") for p in space.parameters):
        return f"{source} [{'base preset' if space.base_preset else 'init'} settings]"
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


def describe_preset(space: ParameterSpace, x: np.ndarray) -> str:
    """Sentences, one per part of the synth, for the parameter vector ``x`` of ``space``."""
    values = space.describe_vector(x)
    lines: list[str] = []
    for i in (1, 2, 3):
        osc = f"osc_{i}"
        if not values.get(f"{osc}_on"):
            continue
        parts = [f"level {_fmt(space, values, f'{osc}_level')}"] if f"{osc}_level" in values else []
        if values.get(f"{osc}_transpose"):
            parts.append(f"transposed {_fmt(space, values, f'{osc}_transpose')} semitones")
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
        for k, label in (("cutoff", "cutoff"), ("resonance", "resonance"), ("drive", "drive"), ("mix", "mix")):
            if f"{f}_{k}" in values:
                parts.append(f"{label} {_fmt(space, values, f'{f}_{k}')}")
                if k == "cutoff":
                    parts[-1] += f" ({_cutoff_hz(values[f'{f}_cutoff']):.0f} Hz)"
        lines.append(f"Filter {i}: " + ", ".join(parts) + ".")
    character = _envelope_character(values, "env_1")
    if character:
        adsr = ", ".join(
            f"{k} {_fmt(space, values, f'env_1_{k}')}" for k in ("attack", "decay", "sustain", "release") if f"env_1_{k}" in values
        )
        lines.append(f"Amplitude envelope: {character} ({adsr}).")
    routes = PresetCodec(space).routes(x) if space.modulation.slots else []
    used = {source for source, _, _ in routes}
    for i in range(1, 9):  # an LFO sounds only through a route (without slots, the base preset's routes)
        lfo = f"lfo_{i}"
        if (lfo in used or not space.modulation.slots) and (f"{lfo}_shape" in values or f"{lfo}_frequency" in values or f"{lfo}_sync" in values):
            shape = values.get(f"{lfo}_shape")
            parts = [f"shape '{shape}'"] if shape is not None else []
            rate = _lfo_rate(space, values, lfo)
            if rate:
                parts.append(rate)
            lines.append(f"LFO {i}: " + ", ".join(parts) + ".")
    if routes:
        lines.append("Modulation: " + "; ".join(f"{_source_label(space, s)} -> {d} ({a:+.2f})" for s, d, a in routes) + ".")
    elif space.modulation.slots:
        lines.append("Modulation: none.")
    return "\n".join(lines)
