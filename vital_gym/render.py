"""Rendering presets through Vital's engine (``vita``), reproducibly, with checks on the audio.

Why renders are not repeatable out of the box: Vital's oscillators start at a random phase
(``osc_N_random_phase``), and a reused ``vita.Synth`` keeps state between renders that
``render()`` does not clear (voices still releasing, effect and filter state, smoothed controls).

How :class:`Renderer` makes them repeatable (``RenderConfig.reset``):

* ``"fresh"`` (default): every render runs on a new ``vita.Synth``. Bit-exact: the same preset gives
  the same samples whatever was rendered before, and equals what ``vita.Synth().load_preset(file)``
  then ``render(...)`` gives for the saved ``.vital``. Costs one synth construction per render
  (about 60 ms here; ``scripts/bench_env.py`` prints it).
* ``"flush"``: one synth is reused; after the preset is applied, a short render with every
  envelope release at zero kills earlier voices and lets controls settle. Much cheaper, and identical
  for most presets, but not all: some oscillator and LFO settings keep history-dependent state for the
  first ~0.1-0.3 s (measured on random core presets: about 60% bit-exact). For training throughput.
* ``"none"``: plain reuse, as Vita does it.

With ``random_phase=False`` (default) every oscillator's phase randomisation is set to 0 before
rendering, and :meth:`Renderer.prepare` writes that into the preset so a saved file sounds the same.
Modulation sources that draw a random value per note (``random``, ``random_1..4``) stay random in
every mode; the parameter spaces leave them out by default.

Loading a preset's JSON makes Vital rebuild wavetables (13 ms for the init preset, up to 300 ms for
human presets), so the renderer reloads only when those parts change and otherwise sets control
values and modulation routes directly.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np

from vital_gym.preset import Preset, _init_preset_json

RANDOM_PHASE_CONTROLS = ("osc_1_random_phase", "osc_2_random_phase", "osc_3_random_phase")
_RELEASE_CONTROLS = tuple(f"env_{i}_release" for i in range(1, 7))
_BLOB_KEYS = ("wavetables", "sample", "custom_warps")


class RenderError(RuntimeError):
    """Vita could not render a preset."""


@dataclass(frozen=True)
class RenderConfig:
    """How a note is played and captured.

    ``note_seconds`` is how long the key is held, ``render_seconds`` how much audio is kept (the release
    tail is what lies between the two). ``channels`` 1 mixes Vital's stereo output to mono.
    """

    midi_note: int = 60
    velocity: float = 0.7
    note_seconds: float = 1.5
    render_seconds: float = 2.0
    sample_rate: int = 44100
    channels: int = 1
    random_phase: bool = False
    reset: Literal["fresh", "flush", "none"] = "fresh"
    flush_seconds: float = 0.05
    silence_rms: float = 1e-4
    clip_level: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if not 0 <= self.midi_note <= 127 or int(self.midi_note) != self.midi_note:
            problems.append(f"midi_note={self.midi_note} (an integer 0..127)")
        if not 0.0 < self.velocity <= 1.0:
            problems.append(f"velocity={self.velocity} (in (0, 1])")
        if not 0.0 < self.note_seconds <= 60.0:
            problems.append(f"note_seconds={self.note_seconds} (in (0, 60])")
        if not 0.0 < self.render_seconds <= 60.0:
            problems.append(f"render_seconds={self.render_seconds} (in (0, 60])")
        if not 8000 <= self.sample_rate <= 192000:
            problems.append(f"sample_rate={self.sample_rate} (8000..192000)")
        if self.channels not in (1, 2):
            problems.append(f"channels={self.channels} (1 or 2)")
        if self.reset not in ("fresh", "flush", "none"):
            problems.append(f"reset={self.reset!r} ('fresh', 'flush' or 'none')")
        if problems:
            raise ValueError("invalid RenderConfig: " + ", ".join(problems))

    @property
    def num_samples(self) -> int:
        return int(self.render_seconds * self.sample_rate)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "RenderConfig":
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown render settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**d)


@dataclass(frozen=True)
class AudioStatus:
    """What is wrong with a piece of audio, if anything."""

    finite: bool
    silent: bool
    clipped: bool
    peak: float
    rms: float

    @property
    def ok(self) -> bool:
        return self.finite and not self.silent

    def describe(self) -> str:
        if not self.finite:
            return "NaN/Inf samples"
        flags = [f for f, on in (("silent", self.silent), ("clipped", self.clipped)) if on]
        return ", ".join(flags) or "ok"


def check_audio(audio: np.ndarray, silence_rms: float = 1e-4, clip_level: float = 1.0) -> AudioStatus:
    finite = bool(np.all(np.isfinite(audio)))
    safe = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.max(np.abs(safe))) if safe.size else 0.0
    rms = float(np.sqrt(np.mean(safe.astype(np.float64) ** 2))) if safe.size else 0.0
    return AudioStatus(finite=finite, silent=rms < silence_rms, clipped=peak > clip_level, peak=peak, rms=rms)


@dataclass(frozen=True)
class RenderResult:
    audio: np.ndarray  # (channels, num_samples) float32; NaN/Inf replaced by 0, see ``status``
    status: AudioStatus


def _blob_key(settings: dict[str, Any]) -> str:
    """Hash of what only a full JSON load can change: wavetables, sample, and the shapes of routed LFOs."""
    routed = {m.get("source") for m in settings.get("modulations", []) if m.get("source")}
    lfos = settings.get("lfos", [])
    parts = {k: settings.get(k) for k in _BLOB_KEYS}
    parts["lfos"] = [lfo if f"lfo_{i + 1}" in routed else None for i, lfo in enumerate(lfos)]
    mods = settings.get("modulations", [])
    parts["mod_extras"] = [{k: v for k, v in m.items() if k not in ("source", "destination")} for m in mods]
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _is_compact(mods: list[dict[str, Any]]) -> bool:
    """True when connected routes come first: then live connection order equals Vital's slot order."""
    seen_empty = False
    for m in mods:
        if m.get("source"):
            if seen_empty:
                return False
        else:
            seen_empty = True
    return True


class Renderer:
    """Renders :class:`Preset` objects with one configuration. Not thread-safe; one per process/env."""

    def __init__(self, config: RenderConfig | None = None):
        import vita

        self._vita = vita
        self.config = config or RenderConfig()
        self._synth = None
        self._applied: dict[str, float] = {}
        self._routes: list[tuple[str, str]] = []
        self._blob: str | None = None
        init = json.loads(_init_preset_json())["settings"]
        self._init_values = {k: float(v) for k, v in init.items() if isinstance(v, (int, float))}
        self._init_blob = _blob_key(init)

    # ------------------------------------------------------------------ public
    def prepare(self, preset: Preset) -> Preset:
        """The preset exactly as rendered (with the renderer's phase setting written in)."""
        overrides = {} if self.config.random_phase else {name: 0.0 for name in RANDOM_PHASE_CONTROLS}
        return preset.with_values(overrides)  # re-validated: a Preset(...) built by hand skipped it

    def render(self, preset: Preset) -> RenderResult:
        prepared = self.prepare(preset)  # validated again: the last line of defence before Vita
        synth = self._reset_synth()
        self._apply(synth, prepared)
        if self.config.reset == "flush":
            self._flush(synth)
        cfg = self.config
        try:
            stereo = synth.render(cfg.midi_note, cfg.velocity, cfg.note_seconds, cfg.render_seconds)
        except Exception as e:  # Vita raises plain RuntimeErrors
            raise RenderError(f"{preset.name}: vita render failed: {e}") from e
        audio = np.asarray(stereo, dtype=np.float32)
        audio = audio.mean(axis=0, keepdims=True) if cfg.channels == 1 else audio
        status = check_audio(audio, cfg.silence_rms, cfg.clip_level)
        if not status.finite:
            audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
        return RenderResult(audio=np.ascontiguousarray(audio), status=status)

    def with_config(self, **changes: Any) -> "Renderer":
        return Renderer(replace(self.config, **changes))

    # ------------------------------------------------------------------ internals
    def _new_synth(self):
        synth = self._vita.Synth()
        synth.set_sample_rate(self.config.sample_rate)
        self._applied = dict(self._init_values)
        self._routes = []
        self._blob = self._init_blob
        return synth

    def _reset_synth(self):
        """A new synth for ``fresh`` (and the first render), else the one in use."""
        if self.config.reset == "fresh" or self._synth is None:
            self._synth = self._new_synth()
        return self._synth

    def _apply(self, synth, preset: Preset) -> None:
        """Load the preset: a full JSON load when its blobs changed, else only the controls and routes."""
        settings = preset.settings
        blob = _blob_key(settings)
        mods = settings.get("modulations", [])
        if blob != self._blob or not _is_compact(mods):
            if not synth.load_json(preset.to_json()):
                raise RenderError("vita refused the preset JSON (load_json returned False)")
            synth.set_sample_rate(self.config.sample_rate)
            self._applied = {k: float(v) for k, v in settings.items() if isinstance(v, (int, float))}
            self._routes = [(m["source"], m["destination"]) for m in mods if m.get("source")]
            self._blob = blob if _is_compact(mods) else None
            return
        controls = synth.get_controls()
        for name, value in settings.items():
            if name in controls and not isinstance(value, (dict, list, str)):
                v = float(value)
                if self._applied.get(name) != v:
                    controls[name].set(v)
                    self._applied[name] = v
        routes = [(m["source"], m["destination"]) for m in mods if m.get("source")]
        if routes != self._routes:
            synth.clear_modulations()
            for src, dst in routes:
                synth.connect_modulation(src, dst)
            self._routes = routes

    def _flush(self, synth) -> None:
        controls = synth.get_controls()
        releases = [controls[n].value() for n in _RELEASE_CONTROLS]
        for n in _RELEASE_CONTROLS:
            controls[n].set(0.0)
        synth.render(self.config.midi_note, self.config.velocity, 0.002, self.config.flush_seconds)
        for n, v in zip(_RELEASE_CONTROLS, releases):
            controls[n].set(v)
