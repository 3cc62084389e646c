"""Rendering presets through Vital's engine (``vita``), reproducibly, with checks on the audio.

Why renders are not repeatable out of the box: Vital's oscillators start at a random phase
(``osc_N_random_phase``), and a reused ``vita.Synth`` keeps state between renders that
``render()`` does not clear (voices still releasing, effect and filter state, smoothed controls).

How :class:`Renderer` makes them repeatable (``RenderConfig.reset``); the reference is a new synth, i.e.
``vita.Synth().load_preset(file)`` then ``render(...)`` for the saved ``.vital``:

* ``"auto"`` (default): one synth is reused, and before each render it is put back in a new synth's
  state: Vital's init values are applied and a short "settle" render (``settle_seconds`` of the init
  sound) lets smoothed controls converge and earlier voices die; then the preset is applied. A preset that
  would still hear the past gets a new synth instead (see :func:`needs_new_synth`): one with an oscillator
  that frequency- or ring-modulates from an oscillator that runs after it or is switched off, or from the
  sampler (in the first block it reads what an earlier render left in that source's buffer), one with no
  source on, or one with an effect that keeps memory (reverb, delay, chorus, flanger, compressor).
  Bit-exact with a new synth (``tests/test_render.py`` checks it over many random presets;
  ``scripts/bench/bench_env.py`` counts it). A synth is also replaced before it would play more than
  ``FRESH_VOICES`` notes: Vital hands its voices out in turn, and a voice used before keeps state.
* ``"settle"``: as ``"auto"``, but a preset that would still hear the past is settled too, not given a
  new synth, and voices are reused once Vital's fresh ones run out. Not exact for those presets: an
  oscillator that reads another's buffer reads, for one block, what the last render left there, and
  effect memory is not cleared. Building a ``vita.Synth`` costs about as much as a 2 s render and holds
  the GIL, so this mode ranks candidates faster, alone and side by side (``agents.match.Matcher``'s
  screening renders, with 1x oversampling; ``scripts/bench/bench_match.py`` times both); never use it
  for a render that is kept.
* ``"fresh"``: a new ``vita.Synth`` for every render (``scripts/bench/bench_env.py`` times it).
* ``"none"``: plain reuse, as Vita does it: fastest, history-dependent.

``oversampling`` (``None``: the preset's own) overrides Vital's oversampling control (0..3: 1x..8x) in the
prepared preset; 1x renders faster than Vital's default 2x, with more aliasing (docs/rendering.md).

With ``random_phase=False`` (default) every oscillator's phase randomisation is set to 0 before
rendering, and :meth:`Renderer.prepare` writes that into the preset so a saved file sounds the same.
Two sources stay random in every mode in vita 0.1.0: the sampler (``sample_on``) plays from a random
position, and the per-note random modulation sources (``random``, ``random_1..4``), which the parameter
spaces leave out by default.

Loading a preset's JSON makes Vital rebuild its wavetables, which costs more than setting controls, so the
renderer reloads only when those parts change and otherwise sets control
values and modulation routes directly.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import numpy as np

from vital_gym.preset import Preset, init_preset

RANDOM_PHASE_CONTROLS = ("osc_1_random_phase", "osc_2_random_phase", "osc_3_random_phase")
VITA_SAMPLE_RATE = 44100  # a new vita.Synth runs at this rate; setting it again is not free, so it is skipped
STATEFUL_EFFECTS = ("reverb_on", "delay_on", "chorus_on", "flanger_on", "compressor_on")
# Notes a synth plays on voices that were never used. Vital's voices are handed out in turn; a used one
# keeps state, so on vita 0.1.0 the 35th note of a synth (render 18 of a settled synth: a settle note and
# the note per render) sounded up to 1.6e-3 off a new synth's render (tests/test_render.py).
FRESH_VOICES = 33
_BLOB_KEYS = ("wavetables", "sample", "custom_warps")
T, R = TypeVar("T"), TypeVar("R")


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
    reset: Literal["auto", "settle", "fresh", "none"] = "auto"
    settle_seconds: float = 0.5
    oversampling: int | None = None
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
        if self.reset not in ("auto", "settle", "fresh", "none"):
            problems.append(f"reset={self.reset!r} ('auto', 'settle', 'fresh' or 'none')")
        if self.oversampling is not None and self.oversampling not in (0, 1, 2, 3):
            problems.append(f"oversampling={self.oversampling!r} (None, or 0..3 for 1x..8x)")
        if not 0.0 < self.settle_seconds <= 10.0:
            problems.append(f"settle_seconds={self.settle_seconds} (in (0, 10])")
        if problems:
            raise ValueError("invalid RenderConfig: " + ", ".join(problems))

    @property
    def num_samples(self) -> int:
        return int(self.render_seconds * self.sample_rate)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RenderConfig:
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
    preset: Preset  # exactly as rendered (validated, the renderer's phase setting written in)


def _blob_key(settings: dict[str, Any]) -> str:
    """Hash of what only a full JSON load can change: wavetables, sample, and the shapes of routed LFOs."""
    routed = {m.get("source") for m in settings.get("modulations", []) if m.get("source")}
    lfos = settings.get("lfos", [])
    parts = {k: settings.get(k) for k in _BLOB_KEYS}
    parts["lfos"] = [lfo if f"lfo_{i + 1}" in routed else None for i, lfo in enumerate(lfos)]
    mods = settings.get("modulations", [])
    parts["mod_extras"] = [{k: v for k, v in m.items() if k not in ("source", "destination")} for m in mods]
    return hashlib.sha1(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@functools.cache
def _cross_modulating_distortions() -> tuple[dict[int, int], frozenset[int]]:
    """Distortion types that read another oscillator (type -> 0 for Vital's "A" source, 1 for "B"), and
    those that read the sampler."""
    from vital_gym.params import control_catalog

    options = control_catalog()["osc_1_distortion_type"].options
    from_osc: dict[int, int] = {}
    for kind in ("FM <- Osc", "RM <- Osc"):
        for slot, index in enumerate(i for i, name in enumerate(options) if name == kind):
            from_osc[index] = slot
    return from_osc, frozenset(i for i, name in enumerate(options) if "<- Sample" in name)


def needs_new_synth(settings: dict[str, Any]) -> str | None:
    """Why a preset cannot be rendered exactly on a settled, reused synth (None when it can).

    An oscillator that frequency- or ring-modulates from another one reads that oscillator's output
    buffer. Oscillators are processed in order, so a source with a lower number that is on has already
    written this block; a source processed later, or switched off, still holds what an earlier render left
    (a new synth holds zeros). Vital's sources "A" and "B" for oscillator i are the other two in ascending
    order. The sampler is treated the same way, and so is a preset with no source on at all (the voice's
    output buffer is then never rewritten). Effects with delay lines keep their memory between renders.
    """
    from_osc, from_sample = _cross_modulating_distortions()
    on = {i: bool(settings.get(f"osc_{i}_on")) for i in (1, 2, 3)}
    if not any(on.values()) and not settings.get("sample_on"):
        return "no oscillator or sampler is on (the voice would replay an earlier render's last block)"
    for i in (1, 2, 3):
        kind = int(settings.get(f"osc_{i}_distortion_type", 0))
        if not on[i]:
            continue
        if kind in from_osc:
            source = [j for j in (1, 2, 3) if j != i][from_osc[kind]]
            if source > i or not on[source]:
                return f"osc_{i} modulates from osc_{source}, which {'is off' if not on[source] else 'runs after it'}"
        if kind in from_sample:
            return f"osc_{i} modulates from the sampler"
    for name in STATEFUL_EFFECTS:
        if settings.get(name):
            return f"{name.removesuffix('_on')} keeps memory"
    return None


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
        self._notes = 0  # notes the synth has played since it was new (settle notes included)
        init = init_preset()
        # What a new vita.Synth holds (the baseline for applying only changed values) ...
        self._init_values = {k: float(v) for k, v in init.settings.items() if isinstance(v, (int, float))}
        self._init_blob = _blob_key(init.settings)
        # ... and the state "auto" settles a used synth back to before each render.
        self._init_preset = self.prepare(init)

    # ------------------------------------------------------------------ public
    def prepare(self, preset: Preset) -> Preset:
        """The preset exactly as rendered (with the renderer's phase and oversampling settings written in)."""
        overrides = {} if self.config.random_phase else {name: 0.0 for name in RANDOM_PHASE_CONTROLS}
        if self.config.oversampling is not None:
            overrides["oversampling"] = float(self.config.oversampling)
        return preset.with_values(overrides)  # re-validated: a Preset(...) built by hand skipped it

    def render(self, preset: Preset, midi_note: int | None = None, velocity: float | None = None) -> RenderResult:
        """Render one note of ``preset``; ``midi_note`` and ``velocity`` override the config's for this call."""
        cfg = self.config
        note = cfg.midi_note if midi_note is None else int(midi_note)
        vel = cfg.velocity if velocity is None else float(velocity)
        if not 0 <= note <= 127 or not 0.0 < vel <= 1.0:
            raise ValueError(f"midi_note={note} must be 0..127 and velocity={vel} in (0, 1]")
        prepared = self.prepare(preset)  # validated again: the last line of defence before Vita
        blob = _blob_key(prepared.settings)
        synth = self._reset_synth(prepared, blob, note, vel)
        self._apply(synth, prepared, blob)
        try:
            stereo = synth.render(note, vel, cfg.note_seconds, cfg.render_seconds)
        except Exception as e:  # Vita raises plain RuntimeErrors
            raise RenderError(f"{preset.name}: vita render failed: {e}") from e
        audio = np.asarray(stereo, dtype=np.float32)
        audio = audio.mean(axis=0, keepdims=True) if cfg.channels == 1 else audio
        status = check_audio(audio, cfg.silence_rms, cfg.clip_level)
        if not status.finite:
            audio = np.nan_to_num(audio, nan=0.0, posinf=0.0, neginf=0.0)
        return RenderResult(audio=np.ascontiguousarray(audio), status=status, preset=prepared)

    def start_fresh(self) -> None:
        """Make the next render start from a new synth, so nothing rendered before this call is heard in
        what follows (``"settle"`` and ``"none"`` renders depend on earlier ones; ``"auto"`` and ``"fresh"``
        never do, and keep their synth)."""
        if self.config.reset in ("settle", "none"):
            self._synth = None

    # ------------------------------------------------------------------ internals
    def _new_synth(self):
        self._notes = 0
        synth = self._vita.Synth()
        if self.config.sample_rate != VITA_SAMPLE_RATE:
            synth.set_sample_rate(self.config.sample_rate)
        self._applied = dict(self._init_values)
        self._routes = []
        self._blob = self._init_blob
        return synth

    def _reset_synth(self, preset: Preset, blob: str, note: int, velocity: float):
        """A synth in a new synth's state (``auto``, ``fresh``), nearly so (``settle``), or the one in use (``none``)."""
        reset = self.config.reset
        out_of_voices = reset == "auto" and self._notes + (2 if self._notes else 1) > FRESH_VOICES
        if self._synth is None or reset == "fresh" or out_of_voices or (reset == "auto" and needs_new_synth(preset.settings)):
            self._synth = self._new_synth()
        elif reset in ("auto", "settle") and self._notes:
            self._settle(self._synth, note, velocity)
        self._notes += 1
        return self._synth

    def _settle(self, synth, note: int, velocity: float) -> None:
        """Back to a new synth's state: init values, then a render that lets everything converge.

        The settle plays the note about to be rendered: a glide (portamento) starts from the last note.
        ``settle`` mode sets only the init controls and routes and keeps the wavetables loaded: the next
        preset often shares them, and a full load costs more than a settle render.
        """
        if self.config.reset == "settle":
            self._apply_controls(synth, self._init_preset.settings, [])
        else:
            self._apply(synth, self._init_preset, self._init_blob)
        synth.render(note, velocity, 0.002, self.config.settle_seconds)
        self._notes += 1

    def _apply(self, synth, preset: Preset, blob: str) -> None:
        """Load the preset: a full JSON load when its blobs changed, else only the controls and routes."""
        settings = preset.settings
        mods = settings.get("modulations", [])
        compact = _is_compact(mods)
        if blob != self._blob or not compact:
            if not synth.load_json(preset.to_json()):
                raise RenderError(f"{preset.name}: vita refused the preset JSON (load_json returned False)")
            if self.config.sample_rate != VITA_SAMPLE_RATE:
                synth.set_sample_rate(self.config.sample_rate)
            self._applied = {k: float(v) for k, v in settings.items() if isinstance(v, (int, float))}
            self._routes = [(m["source"], m["destination"]) for m in mods if m.get("source")]
            self._blob = blob if compact else None
            return
        self._apply_controls(synth, settings, [(m["source"], m["destination"]) for m in mods if m.get("source")])

    def _apply_controls(self, synth, settings: dict[str, Any], routes: list[tuple[str, str]]) -> None:
        """Set the control values that differ from those applied, and the routes if they differ."""
        controls = synth.get_controls()
        for name, value in settings.items():
            if name in controls and not isinstance(value, (dict, list, str)):
                v = float(value)
                if self._applied.get(name) != v:
                    controls[name].set(v)
                    self._applied[name] = v
        if routes != self._routes:
            synth.clear_modulations()
            for src, dst in routes:
                synth.connect_modulation(src, dst)
            self._routes = routes


def side_by_side(renderers: Sequence[Renderer], items: Sequence[T], work: Callable[[Renderer, T], R], pool: ThreadPoolExecutor | None = None) -> list[R]:
    """``work(renderer, item)`` for every item, in ``items``' order: item ``i`` on renderer ``i % n``, each of
    the ``n = min(len(renderers), len(items))`` renderers on its own thread of ``pool`` (a new one if None).

    Why: a :class:`Renderer` is not thread-safe, but Vita renders outside the GIL, so one renderer per
    thread renders several presets at once.
    """
    n = min(len(renderers), len(items))
    if n == 0:
        return []

    def share(w: int) -> list[R]:
        return [work(renderers[w], items[i]) for i in range(w, len(items), n)]

    if pool is None:
        with ThreadPoolExecutor(n) as own:
            shares = list(own.map(share, range(n)))
    else:
        shares = list(pool.map(share, range(n)))
    out: list[R] = [None] * len(items)  # type: ignore[list-item]
    for w, results in enumerate(shares):
        out[w::n] = results
    return out
