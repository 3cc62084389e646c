"""Audio in, Vital preset out: ``vital-gym match target.wav -o out.vital``.

The target is read (any wav/flac/ogg, mono-mixed, resampled, trimmed or padded to the model's render
length), its pitch estimated (YIN) to choose the MIDI note, its log-mel fed to a trained
:class:`~agents.supervised.model.SoundMatcher`, and the predicted parameters written as a ``.vital`` file
that opens in Vital, with a render of it (``.wav``), a PNG comparing target and render log-mels, the
spectral distance, and a plain-language description of the preset.

Candidates. A model with several hypotheses (``DecoderConfig.hypotheses``) proposes K presets, and each
hypothesis' categorical and on/off outputs are distributions: ``draws`` more presets per hypothesis are
drawn from them (:func:`~agents.supervised.model.draw_presets`; the continuous values stay the
hypothesis', or, for a model with ``DecoderConfig.spread``, are drawn about them at the spread it
predicts). All candidates are rendered, on one thread per core, and the closest to the target is kept
(``select=False``: the best-scored hypothesis, one render). A switch-conditioned model
(``DecoderConfig.switch_conditioning``) is asked again given each candidate's on/off switches (the
hypothesis' own, then the drawn ones), so every candidate's other settings fit its switches.
``refine=N`` then runs CMA-ES through Vita for ``N`` renders (:mod:`agents.refine`) and reports the gain
over the raw prediction.

Screening. Candidates are ranked on cheaper renders (``SCREEN_RENDER``: a settled synth instead of a new
one, Vital's oversampling at 1x; see :mod:`vital_gym.render`) and only the closest is rendered exactly:
the preset, render and distance returned are exact, the per-candidate distances are the screening ones.
A new synth holds the GIL while it is built, so screening renders also run better side by side
(docs/matching.md has the measured speed and how often the screened choice is the exact one);
``Matcher(screen=False)`` ranks on exact renders.

Many targets. :func:`match_files` matches every file of a list with one loaded model, writes each result
as ``OUT/<name>.vital`` (with its ``.wav`` and ``.png``) and a table of them all, ``OUT/matches.csv``; a
file that cannot be matched is reported in its row and the others go on.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np
import torch

from agents.dataset.shards import dequantise, quantise
from agents.library import DEFAULT_SHORTLIST, PresetLibrary
from agents.neighbours import DEFAULT_NEIGHBOURS, NEIGHBOURS_FILE, DatasetNeighbours, embed
from agents.plots import plot_comparison
from agents.refine import RefineResult, refine
from agents.supervised.checkpoint import load_model
from agents.supervised.critic import CRITIC_DIR, load_critic, select
from agents.supervised.model import SoundMatcher, draw_presets
from vital_gym.audio import AUDIO_SUFFIXES, AudioFileError, estimate_midi_note, load_audio, write_wav
from vital_gym.describe import describe_preset
from vital_gym.features import MelConfig, spectrogram
from vital_gym.preset import Preset, PresetCodec
from vital_gym.render import RenderConfig, Renderer, RenderResult, check_audio, side_by_side
from vital_gym.rewards import MultiResolutionSTFTDistance

DEFAULT_MODEL = Path(str(files("agents").joinpath("models", "core_cpu")))  # the shipped model, package data
MAX_TARGET_SECONDS = 60.0
DEFAULT_DRAWS = 2  # draws per hypothesis rendered beside it: 8 hypotheses -> 24 candidates
SCREEN_RENDER = {"reset": "settle", "oversampling": 0}  # RenderConfig changes for ranking candidates
# Render threads by default: one per core up to this. Past a few threads the one exact render of the
# chosen candidate, made after the others, dominates (scripts/bench/bench_match.py). Another count deals
# candidates out to the settled synths differently, which can move screening distances slightly.
MAX_RENDER_WORKERS = 4
MATCHES_CSV = "matches.csv"
FAST = {"draws": 0, "library_shortlist": 1, "neighbours": 1}  # vital-gym match --fast: the hypotheses, one library preset, one dataset sample


def default_render_workers() -> int:
    """Render threads for candidates: one per core of this machine, at most ``MAX_RENDER_WORKERS``."""
    return min(MAX_RENDER_WORKERS, os.cpu_count() or 1)


def candidate_renderers(config: RenderConfig, workers: int | None = None, screen: bool = True) -> list[Renderer]:
    """``workers`` renderers (default: :func:`default_render_workers`) for ranking candidates side by side,
    on screening renders (``SCREEN_RENDER``) unless ``screen`` is False."""
    workers = default_render_workers() if workers is None else workers
    if workers < 1:
        raise ValueError(f"render_workers={workers}: need at least one")
    return [Renderer(dataclasses.replace(config, **SCREEN_RENDER) if screen else config) for _ in range(workers)]


@dataclass
class MatchResult:
    preset: Preset
    x: np.ndarray  # the parameter vector
    midi_note: int
    velocity: float
    target: np.ndarray  # (1, samples) at the render rate
    render: np.ndarray  # (1, samples)
    distance: float  # spectral distance of the render to the target
    predicted_distance: float  # of the raw prediction (the chosen hypothesis), before refinement
    seconds: float  # prediction time: features, network, decoding, a render per candidate (refinement excluded)
    description: str
    refined: RefineResult | None = None
    candidate_distances: tuple[float, ...] = ()  # each candidate's (screening) distance, in Matcher.candidates' order
    library_preset: Path | None = None  # the library file the match started from, if a library preset was closest
    library_distances: tuple[float, ...] = ()  # the shortlisted library presets' exact distances, closest by sound first
    neighbour: int | None = None  # the training dataset's sample the match started from, if a dataset sample was closest
    neighbour_distances: tuple[float, ...] = ()  # the nearest dataset samples' exact distances, nearest by sound first

    def summary(self, given_note: bool) -> str:
        """A few lines on how the match was made: the note, the distances, the candidates and refinement."""
        lines = [
            f"note {self.midi_note} ({'given' if given_note else 'estimated pitch'}), velocity {self.velocity}",
            f"spectral distance: {self.predicted_distance:.4f} (prediction, {self.seconds:.2f} s)",
        ]
        if len(self.candidate_distances) > 1:
            lines.append(f"  closest of {len(self.candidate_distances)} candidates (best-scored hypothesis: {self.candidate_distances[0]:.4f})")
        if self.neighbour_distances:
            chosen = f"chosen: sample {self.neighbour}" if self.neighbour is not None else "not chosen"
            lines.append(f"  {len(self.neighbour_distances)} nearest training samples, closest {min(self.neighbour_distances):.4f} ({chosen})")
        if self.library_distances:
            chosen = f"chosen: {self.library_preset.name}" if self.library_preset is not None else "not chosen"
            lines.append(f"  {len(self.library_distances)} library presets, closest {min(self.library_distances):.4f} ({chosen})")
        if self.refined is not None:
            r = self.refined
            lines.append(f"  after refinement: {self.distance:.4f} ({r.renders} renders, {100 * r.gain:.1f}% lower)")
        return "\n".join(lines)


class Matcher:
    """A trained model with the render and log-mel settings it was trained with.

    ``render_workers`` threads render candidates side by side, each with its own :class:`Renderer` (Vita
    does its work outside the GIL); the default is one per core, at most ``MAX_RENDER_WORKERS``. ``screen``
    ranks them on screening renders (module docstring); ``False`` ranks them on exact ones. ``draw_temperature``: how far
    the drawn candidates stray from their hypotheses (:func:`draw_presets`). ``base_encoder``: where an
    adapter checkpoint's base encoder file is now (:func:`~agents.supervised.checkpoint.load_model`).
    ``critic``: a candidate critic trained for this model (:mod:`agents.supervised.critic`), which chooses the
    drawn candidates from a larger pool before any is rendered: True (default) the model folder's own
    (``critic/``) if it has one, a folder, or False for none. ``library``: presets to try beside the
    model's candidates (:mod:`agents.library`): a :class:`PresetLibrary` indexed with this model's render
    and log-mel settings, or folders to index so (cached; ``progress`` shows the indexing); its
    ``library_shortlist`` presets (default ``DEFAULT_SHORTLIST``) nearest the target by sound are rendered
    at the target's note, and the closest of all is kept. None (default): the model's candidates alone.
    ``neighbours``: an index of the model's training data (:mod:`agents.neighbours`): True (default) the
    model folder's own (``neighbours.npz``) if it has one, a file, an index, or False for none; its
    ``neighbour_count`` samples (default ``DEFAULT_NEIGHBOURS``) nearest the target by sound are rendered
    at the target's note beside the other candidates.

    A library preset or dataset sample that is kept is refined in the model's space from that preset: what
    the space does not cover, and what refinement does not move, stays as it is there.
    """

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        device: str = "cpu",
        render_workers: int | None = None,
        screen: bool = True,
        draw_temperature: float = 1.0,
        base_encoder: str | Path | None = None,
        critic: str | Path | bool = True,
        library: PresetLibrary | Sequence[str | Path] | None = None,
        library_shortlist: int | None = None,
        neighbours: DatasetNeighbours | str | Path | bool = True,
        neighbour_count: int | None = None,
        progress: bool = False,
    ):
        folder = Path(checkpoint) if checkpoint else DEFAULT_MODEL
        if not folder.exists():
            raise FileNotFoundError(
                f"no model at {folder}" + ("" if checkpoint else " (the shipped model is missing from this install; pass --checkpoint DIR)")
            )
        self.model, self.space, meta = load_model(folder, device=device, base_encoder=base_encoder)
        self.device = device
        self.codec = PresetCodec(self.space)
        self.render_config = RenderConfig.from_dict(meta.get("render"))
        self.renderer = Renderer(self.render_config)
        self.screen = screen
        self.draw_temperature = draw_temperature
        self.candidate_renderers = candidate_renderers(self.render_config, render_workers, screen)
        observation = MelConfig.from_dict(meta.get("observation"))
        self.mel = spectrogram(observation, self.render_config.sample_rate)
        if critic is True:
            critic = folder / CRITIC_DIR if (folder / CRITIC_DIR).is_dir() else False
        self.critic = load_critic(critic, folder)[0].to(device) if critic is not False else None
        if library is not None and not isinstance(library, PresetLibrary):
            library = PresetLibrary.index(library, self.render_config, observation, workers=len(self.candidate_renderers), progress=progress)
        if library is not None and library.render != self.render_config:
            raise ValueError("the preset library was indexed with other render settings than the model's; index it with the model's")
        library_shortlist = DEFAULT_SHORTLIST if library_shortlist is None else library_shortlist
        if library_shortlist < 0:
            raise ValueError(f"library_shortlist={library_shortlist}: must be >= 0")
        self.library, self.library_shortlist = library, library_shortlist
        if neighbours is True:
            neighbours = folder / NEIGHBOURS_FILE if (folder / NEIGHBOURS_FILE).is_file() else False
        if neighbours is not False and not isinstance(neighbours, DatasetNeighbours):
            neighbours = DatasetNeighbours.load(neighbours, self.space)
        if neighbours is not False and neighbours.space.fingerprint != self.space.fingerprint:
            raise ValueError(f"the dataset index is of space '{neighbours.space.name}', the model of '{self.space.name}'")
        neighbour_count = DEFAULT_NEIGHBOURS if neighbour_count is None else neighbour_count
        if neighbour_count < 0:
            raise ValueError(f"neighbour_count={neighbour_count}: must be >= 0")
        self.neighbours, self.neighbour_count = neighbours or None, neighbour_count
        self.library_renderers = [Renderer(self.render_config) for _ in self.candidate_renderers]  # exact: effects and all

    def load_target(self, path: str | Path) -> np.ndarray:
        """The target as ``(1, samples)``; names the file and the problem when it cannot be used."""
        cfg = self.render_config
        audio = load_audio(path, cfg.sample_rate, cfg.num_samples, channels=1, max_seconds=MAX_TARGET_SECONDS)
        status = check_audio(audio, cfg.silence_rms)
        if status.silent:
            raise AudioFileError(f"{path}: silent in its first {cfg.render_seconds} s (RMS {status.rms:.1e}); nothing to match")
        return audio

    @torch.no_grad()
    def candidates(self, target: np.ndarray, midi_note: int, draws: int = 0, seed: int = 0) -> np.ndarray:
        """``(K * (1 + draws), P)`` parameter vectors for ``target`` played at ``midi_note``: the model's K
        hypotheses best-scored first (K = 1 for a one-hypothesis model), then ``draws`` rounds of one draw
        per hypothesis (same order) from its predictive distributions (:func:`draw_presets`), seeded by ``seed``.
        With a critic and ``draws``: the K * (1 + draws) its critic ranks first, lowest cost first, of the
        hypotheses and ``pool_draws`` rounds of draws."""
        if draws < 0:
            raise ValueError(f"draws={draws}: must be >= 0")
        logmel = self._logmel(target)
        note = torch.tensor([float(midi_note)], device=self.device)
        tokens = self.model.encoder(logmel)
        z, scores, log_spread = self.model.decoder.predictive(tokens, note)
        order = scores[0].argsort(descending=True)
        z = z[0, order].cpu()  # (K, action_dim)
        spread = None if log_spread is None else log_spread[0, order].cpu()
        generator = torch.Generator().manual_seed(seed)
        pool = max(draws, self.critic.config.pool_draws) if self.critic is not None and draws else draws
        if self.model.switch_conditioned:
            z = self._given_switches(tokens, note, order, z, spread, pool, generator)
        elif pool:
            drawn = draw_presets(z, self.space, pool, generator, spread, self.draw_temperature)
            z = torch.cat([z, drawn.flatten(0, 1)])
        actions = SoundMatcher.actions(z).cpu().numpy()
        xs = np.stack([self.codec.canonical(self.space.action_to_vector(a)) for a in actions])
        if pool == draws:
            return xs
        # The critic keeps the K * (1 + draws) candidates of the pool it ranks first, in its order.
        probabilities = torch.softmax(scores[0], -1)[order][None]  # the hypotheses' scores in the candidates' order
        cost = self.critic(tokens.mean(1), probabilities, torch.from_numpy(xs).float().to(self.device)[None])
        return xs[select(cost, len(order) * (1 + draws))[0].cpu().numpy()]

    def _given_switches(
        self,
        tokens: torch.Tensor,
        note: torch.Tensor,
        order: torch.Tensor,
        z: torch.Tensor,
        spread: torch.Tensor | None,
        draws: int,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """A switch-conditioned model's candidates ``(K * (1 + draws), action_dim)``: each hypothesis' own
        switches (its decided on/off outputs), then ``draws`` rounds of switches drawn from them, and for
        every pattern the decoder asked again given it (the hypothesis' other outputs given its switches;
        a drawn round's other choices and values then drawn from those, as :func:`draw_presets` does)."""
        decoder = self.model.decoder
        patterns = [decoder.switches_of(z)]  # (K, S) each: round 0 the hypotheses' own switches
        if draws:
            drawn = draw_presets(z, self.space, draws, generator, spread, self.draw_temperature)
            patterns += list(decoder.switches_of(drawn))
        rounds = len(patterns)
        switches = torch.zeros(rounds, decoder.num_hypotheses, len(decoder.switch_dims))
        switches[:, order] = torch.stack(patterns)  # back into the decoder's hypothesis order
        given, _, given_spread = decoder.predictive(tokens.expand(rounds, -1, -1), note.expand(rounds), switches.to(tokens.device))  # (rounds, K, action_dim)
        given, dims = given[:, order].cpu(), decoder.switch_dims.cpu()
        out = [given[0]]
        for r in range(1, rounds):
            spread_r = None if given_spread is None else given_spread[r, order].cpu()
            one = draw_presets(given[r], self.space, 1, generator, spread_r, self.draw_temperature)[0]
            # the pattern exactly as told (a drawn decided switch flips with probability 5e-5)
            out.append(one.index_copy(1, dims, given[r][:, dims]))
        return torch.cat(out)

    def predict(self, target: np.ndarray, midi_note: int) -> np.ndarray:
        """The parameter vector of a preset that, played at ``midi_note``, sounds like ``target`` (the
        best-scored hypothesis; no render)."""
        return self.candidates(target, midi_note)[0]

    def closest(
        self, target: np.ndarray, midi_note: int, velocity: float, select: bool = True, draws: int = DEFAULT_DRAWS, seed: int = 0
    ) -> tuple[np.ndarray, RenderResult, float, tuple[float, ...]]:
        """The candidate whose render is closest to ``target`` (``select=False``: the best-scored hypothesis),
        its render and distance, and every candidate's distance in :meth:`candidates`' order."""
        xs = self.candidates(target, midi_note, draws if select else 0, seed)
        return self.render_closest(target, xs if select else xs[:1], midi_note, velocity)

    def render_closest(self, target: np.ndarray, xs: np.ndarray, midi_note: int, velocity: float) -> tuple[np.ndarray, RenderResult, float, tuple[float, ...]]:
        """Render every parameter vector of ``xs`` ``(N, P)`` and keep the closest (:func:`render_closest`
        on the candidate renderers; the chosen one rendered again exactly when they screen)."""
        return render_closest(target, xs, self.codec, self.candidate_renderers, midi_note, velocity, self.renderer if self.screen else None)

    def match(
        self,
        target: np.ndarray,
        midi_note: int | None = None,
        velocity: float = 0.7,
        refine_budget: int = 0,
        seed: int = 0,
        select: bool = True,
        draws: int = DEFAULT_DRAWS,
    ) -> MatchResult:
        """The closest candidate (:meth:`closest`; ``seed`` draws them), refined for ``refine_budget`` renders."""
        start = time.perf_counter()
        note = estimate_midi_note(target, self.render_config.sample_rate, self.render_config.midi_note) if midi_note is None else midi_note
        x, rendered, distance, candidate_distances = self.closest(target, note, velocity, select, draws, seed)
        codec, origin, neighbour, neighbour_distances, source, library_distances = self.codec, "", None, (), None, ()
        if self.neighbours is not None and self.neighbour_count and select:
            found = self.neighbours.nearest(self.embedding(target), note, self.neighbour_count)
            _, found_rendered, found_distance, neighbour_distances = render_closest(
                target, [n.preset() for n in found], None, self.library_renderers, note, velocity
            )
            if found_distance < distance:
                best = found[int(np.argmin(neighbour_distances))]
                codec, x, rendered, distance, neighbour = best.codec, best.x, found_rendered, found_distance, best.sample
                origin = f"From the training data: sample {best.sample} of {self.neighbours.dataset or 'its dataset'}\n\n"
        if self.library is not None and self.library_shortlist and select:
            entries = self.library.shortlist(target, note, self.library_shortlist)
            _, library_rendered, library_distance, library_distances = render_closest(
                target, [e.preset for e in entries], None, self.library_renderers, note, velocity
            )
            if library_distance < distance:
                source = entries[int(np.argmin(library_distances))]
                codec = PresetCodec(self.space, base=source.preset, keep_base=True)  # refinement keeps what it does not move
                x, rendered, distance, neighbour = codec.base_vector, library_rendered, library_distance, None
                origin = f"From the preset library: {source.path}\n\n"
        seconds = time.perf_counter() - start
        predicted = distance
        refined = None
        if refine_budget > 0:
            refined = self.refine(target, x, note, velocity, refine_budget, seed, predicted, codec)
            if refined.distance < distance:
                x, distance = refined.x, refined.distance
                rendered = refined.render  # exact: refine rendered it on self.renderer or checked it there
        # The preset exactly as rendered (phase setting written in), so the saved file sounds like the render.
        return MatchResult(
            rendered.preset,
            x,
            note,
            velocity,
            target,
            rendered.audio,
            distance,
            predicted,
            seconds,
            origin + describe_preset(self.space, x),
            refined,
            candidate_distances,
            source.path if source is not None else None,
            library_distances,
            neighbour,
            neighbour_distances,
        )

    @torch.no_grad()
    def embedding(self, target: np.ndarray) -> torch.Tensor:
        """``(D,)``: the model's view of ``target`` ``(1, samples)`` that the dataset index compares
        (:func:`agents.neighbours.embed` of its log-mel, quantised as the data stores it)."""
        return embed(self.model, self._logmel(target))[0].cpu()

    def _logmel(self, target: np.ndarray) -> torch.Tensor:
        """``(1, 1, mels, frames)``: the network's input for ``target``, its log-mel quantised as the data stores it."""
        return torch.from_numpy(dequantise(quantise(self.mel(target))))[None, None].to(self.device)

    def refine(
        self,
        target: np.ndarray,
        x: np.ndarray,
        midi_note: int,
        velocity: float,
        budget: int,
        seed: int = 0,
        distance: float | None = None,
        codec: PresetCodec | None = None,
    ) -> RefineResult:
        """CMA-ES from ``x`` (:func:`agents.refine.refine`; ``distance``: its exact distance, if known) on the
        candidate renderers, the best found checked by an exact render. ``codec``: how vectors become presets
        (default the model's, over Vital's init preset; a library preset's keeps what the space does not cover)."""
        return refine(
            target,
            x,
            codec or self.codec,
            self.candidate_renderers,
            midi_note,
            velocity,
            budget,
            seed=seed,
            start_distance=distance,
            exact=self.renderer if self.screen else None,
            name="vital-gym match",
        )

    def write(self, result: MatchResult, out: str | Path) -> list[Path]:
        """``out`` (.vital), its render (.wav) and the comparison (.png) beside it."""
        out = Path(out)
        if out.suffix != ".vital":
            raise ValueError(f"{out}: the output must be a .vital file")
        vital, wav, png = output_files(out)
        return [result.preset.save(vital), write_wav(wav, result.render, self.render_config.sample_rate), self._plot(result, png)]

    def _plot(self, result: MatchResult, path: Path) -> Path:
        panels = [("target", result.target), (f"match (distance {result.distance:.3f})", result.render)]
        return plot_comparison(panels, self.mel, path)


def render_closest(
    target: np.ndarray,
    xs: np.ndarray | Sequence[Preset],
    codec: PresetCodec | None,
    renderers: Sequence[Renderer],
    midi_note: int,
    velocity: float,
    exact: Renderer | None = None,
) -> tuple[np.ndarray, RenderResult, float, tuple[float, ...]]:
    """Render every parameter vector of ``xs`` ``(N, P)`` through ``codec`` (None: ``xs`` are presets) side
    by side on ``renderers`` and score it against ``target`` ``(channels, samples)`` (the multi-resolution
    STFT distance; infinite for a render that is not finite). Returns the closest (the first on a tie), its
    render and distance, and every candidate's distance in the order of ``xs``. ``exact``: a renderer that
    renders the chosen one again, where ``renderers`` make cheaper screening renders; its render and
    distance are returned instead."""
    distance = MultiResolutionSTFTDistance()
    distance.set_target(target)

    def score(renderer: Renderer, x: np.ndarray) -> tuple[RenderResult, float]:
        rendered = renderer.render(x if codec is None else codec.to_preset(x, name="vital-gym match"), midi_note, velocity)
        return rendered, distance(rendered.audio) if rendered.status.finite else float("inf")

    scored = side_by_side(list(renderers), list(xs), score)
    distances = tuple(d for _, d in scored)
    best = int(np.argmin(distances))
    rendered, d = score(exact, xs[best]) if exact is not None else scored[best]
    return xs[best], rendered, d, distances


@dataclass
class MatchRow:
    """One line of ``matches.csv``: a target file and what matching it gave (``error`` when it failed)."""

    file: str
    note: int | None = None
    distance: float | None = None
    seconds: float | None = None
    preset: str = ""
    render: str = ""
    image: str = ""
    error: str = ""


def audio_files(targets: Sequence[str | Path]) -> tuple[list[Path], bool]:
    """The audio files ``targets`` names (a folder: its wav/flac/ogg files, recursively, sorted), and
    whether they are a batch (a folder or several paths) rather than one file. A path that does not exist
    is kept, so that its match fails with a clear error in its own row."""
    out: list[Path] = []
    for target in map(Path, targets):
        if target.is_dir():
            found = sorted(p for p in target.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                raise FileNotFoundError(f"{target}: a folder with no {'/'.join(AUDIO_SUFFIXES)} files")
            out += found
        else:
            out.append(target)
    return out, len(targets) > 1 or any(Path(t).is_dir() for t in targets)


def output_files(vital: Path) -> tuple[Path, Path, Path]:
    """What a match written as ``vital`` writes: the preset, its render (``.wav``) and the comparison (``.png``)."""
    return vital, vital.with_suffix(".wav"), vital.with_suffix(".png")


def check_no_target_overwritten(targets: Sequence[Path], vitals: Sequence[Path]) -> None:
    """Refuse, before anything is written, outputs that would replace a target (``clip.wav`` matched to
    ``clip.vital`` beside it would have its render written over it)."""
    inputs = {t.resolve() for t in targets if t.exists()}
    for vital in vitals:
        for path in output_files(vital):
            if path.resolve() in inputs:
                raise ValueError(f"{path}: the match's output would overwrite this target; write the matches elsewhere (-o)")


def output_stems(paths: Sequence[Path]) -> list[str]:
    """An output name per file: its stem, with ``-2``, ``-3``, ... after a stem already taken."""
    taken: dict[str, int] = {}
    stems = []
    for path in paths:
        n = taken[path.stem] = taken.get(path.stem, 0) + 1
        stems.append(path.stem if n == 1 else f"{path.stem}-{n}")
    return stems


def match_files(
    matcher: Matcher,
    paths: Sequence[Path],
    out: str | Path,
    midi_note: int | None = None,
    velocity: float = 0.7,
    refine_budget: int = 0,
    seed: int = 0,
    select: bool = True,
    draws: int = DEFAULT_DRAWS,
    progress: bool = True,
) -> list[MatchRow]:
    """Match every file of ``paths`` with one loaded model into the folder ``out``: ``<name>.vital``,
    ``<name>.wav`` and ``<name>.png`` each, and ``matches.csv`` (one :class:`MatchRow` per file, in order).
    A file that cannot be read or matched gets its error in its row; the others go on."""
    from tqdm import tqdm

    out = Path(out)
    stems = output_stems(paths)
    check_no_target_overwritten(paths, [out / f"{stem}.vital" for stem in stems])
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for path, stem in zip(tqdm(paths, unit="file", disable=not progress), stems):
        try:
            result = matcher.match(matcher.load_target(path), midi_note, velocity, refine_budget, seed, select, draws)
            preset, render, image = matcher.write(result, out / f"{stem}.vital")
            rows.append(MatchRow(str(path), result.midi_note, result.distance, result.seconds, preset.name, render.name, image.name))
        except (ValueError, FileNotFoundError) as e:  # AudioFileError is a ValueError
            rows.append(MatchRow(str(path), error=str(e)))
    with open(out / MATCHES_CSV, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[field.name for field in dataclasses.fields(MatchRow)])
        writer.writeheader()
        writer.writerows(dataclasses.asdict(r) for r in rows)
    return rows
