"""A dataset's observations computed again from its stored audio, with other observation settings.

Rendering is what a dataset costs (``data/core``: 2.5 hours on 2 cores); its shards also keep every sample's
audio (int16 at ``audio_sample_rate``). :func:`refeature` writes a copy of a dataset whose ``logmel`` holds
another front end's features of that audio (AudioMAE's filterbank, say: ``vital-gym dataset features
data/core --out data/core_audiomae --observation frontend=audiomae``), every other array unchanged, and a
manifest whose ``observation`` says so and whose ``derived_from`` names the source.

The stored audio must hold what the front end reads: AudioMAE's filterbank reads up to 8 kHz, so it needs
audio at 16 kHz or more; the "vital" log-mel reads up to the render's Nyquist frequency, so it needs the
render's own rate. What the audio lacks is the float render's floor: int16 audio has a noise floor about
100 dB below full scale, so components that quiet read differently (docs/experiments.md gives
how closely features from the stored audio agree with the rendered ones, by level).

Resuming: shards are written atomically and recorded in the output's manifest one by one, so running the
same command again converts only what is missing.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np

from agents.dataset.shards import MANIFEST, Manifest, quantise, read_shard, sha256, write_shard
from vital_gym.features import AudioMAEFilterbank, MelConfig, spectrogram
from vital_gym.render import RenderConfig


def check_audio_covers(manifest: Manifest, observation: MelConfig, folder: Path) -> int:
    """The stored audio's sample rate, if it holds what ``observation`` reads; else a ValueError that says why."""
    rate = manifest.config.get("audio_sample_rate")
    if not rate:
        raise ValueError(f"{folder} stores no audio (audio_sample_rate: null): generate the data with the new observation instead")
    render_rate = RenderConfig.from_dict(manifest.config.get("render")).sample_rate
    if observation.frontend == "audiomae" and rate < AudioMAEFilterbank.SAMPLE_RATE:
        raise ValueError(f"{folder} stores audio at {rate} Hz; AudioMAE's filterbank reads 16 kHz audio (bands up to 8 kHz)")
    if observation.frontend == "vital" and rate != render_rate:
        raise ValueError(
            f"{folder} stores audio at {rate} Hz and the 'vital' log-mel is computed at the render's {render_rate} Hz: "
            "generate the data with the new observation instead"
        )
    return int(rate)


def _convert(source: Path, out: Path, name: str, digest: str, observation: MelConfig, rate: int) -> tuple[str, str]:
    if sha256(source / name) != digest:
        raise ValueError(f"{source / name} does not match its checksum in {source / MANIFEST}: run vital-gym dataset verify {source}")
    arrays = read_shard(source / name)
    features = spectrogram(observation, rate)
    audio = arrays["audio"].astype(np.float32) / 32767.0  # (n, samples), mono
    arrays["logmel"] = np.stack([quantise(features(a[None])) for a in audio])
    return name, write_shard(out / name, arrays)


def refeature(source: str | Path, out: str | Path, observation: dict[str, Any], workers: int = 1, progress: bool = False) -> Manifest:
    """Write ``out``: ``source`` with the observation ``observation`` (:class:`MelConfig` fields) computed from its audio.
    ``progress`` shows a progress bar of the shards, with the time left."""
    source, out = Path(source), Path(out)
    if workers < 1:
        raise ValueError(f"workers={workers} must be >= 1")
    if source.resolve() == out.resolve():
        raise ValueError(f"--out {out} is the source folder: choose another")
    manifest = Manifest.load(source)
    config = MelConfig.from_dict(observation)
    rate = check_audio_covers(manifest, config, source)
    derived = dataclasses.replace(
        manifest,
        config={**manifest.config, "observation": dict(observation)},
        shards={},
        derived_from={"folder": str(source), "observation": manifest.config.get("observation")},
    )
    if (out / MANIFEST).is_file():
        existing = Manifest.load(out)
        if existing.config != derived.config or existing.derived_from != derived.derived_from:
            raise ValueError(f"{out} holds another dataset; choose another --out")
        derived.shards = {n: d for n, d in existing.shards.items() if (out / n).is_file() and sha256(out / n) == d}
    elif out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} exists and is not empty; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    derived.save(out)
    todo = [n for n in sorted(manifest.shards) if n not in derived.shards]
    if workers == 1:
        done = (_convert(source, out, n, manifest.shards[n], config, rate) for n in todo)
        return _record(done, derived, out, len(todo), progress)
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("forkserver")) as pool:
        futures = [pool.submit(_convert, source, out, n, manifest.shards[n], config, rate) for n in todo]
        return _record((f.result() for f in as_completed(futures)), derived, out, len(todo), progress)


def _record(done: Iterable[tuple[str, str]], manifest: Manifest, out: Path, total: int, progress: bool) -> Manifest:
    """Each converted shard into the manifest as it is finished, so that a killed run resumes after it."""
    from tqdm import tqdm

    for name, digest in tqdm(done, total=total, unit="shard", disable=not progress):
        manifest.shards[name] = digest
        manifest.save(out)
    return manifest
