"""A plain-language description of a preset, generated deterministically from its parameter vector.

What a sound designer reads to rebuild or tweak the sound by hand: which sources play and with what
waves, the filters, the shape of the amplitude envelope, the LFOs, and the modulation routes. Only the
parameters the space holds are described; values are in the units Vital's interface shows.
"""

from __future__ import annotations

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
            parts.append(f"into {values[f'{osc}_destination']}")
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
        lines.append(f"Filter {i}: " + ", ".join(parts) + ".")
    character = _envelope_character(values, "env_1")
    if character:
        adsr = ", ".join(
            f"{k} {_fmt(space, values, f'env_1_{k}')}" for k in ("attack", "decay", "sustain", "release") if f"env_1_{k}" in values
        )
        lines.append(f"Amplitude envelope: {character} ({adsr}).")
    for i in (1, 2, 3, 4):
        lfo = f"lfo_{i}"
        if f"{lfo}_shape" in values or f"{lfo}_frequency" in values:
            shape = values.get(f"{lfo}_shape")
            parts = [f"shape '{shape}'"] if shape is not None else []
            if f"{lfo}_frequency" in values:
                parts.append(f"rate {_fmt(space, values, f'{lfo}_frequency')}")
            if f"{lfo}_sync" in values:
                parts.append(f"sync {values[f'{lfo}_sync']}")
            lines.append(f"LFO {i}: " + ", ".join(parts) + ".")
    routes = PresetCodec(space).routes(x) if space.modulation.slots else []
    if routes:
        lines.append("Modulation: " + "; ".join(f"{s} -> {d} ({a:+.2f})" for s, d, a in routes) + ".")
    elif space.modulation.slots:
        lines.append("Modulation: none.")
    return "\n".join(lines)
