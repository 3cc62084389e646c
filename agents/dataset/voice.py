"""Make a voice-like out-of-domain target set with espeak-ng: sustained vowels and hums at several pitches.

    apt-get install espeak-ng                       # Debian/Ubuntu package
    vital-gym dataset voice -o data/voice

There is no vocal imitation set on these machines; this one stands in for it in tests and demos (the
benchmark and fine-tuning take any folder of audio). Every combination of

* sound: the vowels /a/ /e/ /i/ /o/ /u/ held (espeak phoneme input, e.g. ``[[a::::::::]]``) and a hum
  ("hmmmm");
* voice: espeak's ``en+m3`` (low), ``en`` and ``en+f3`` (high);
* pitch: espeak ``-p`` 20, 50, 80, 99

is written as ``{sound}_{voice}_p{pitch}.wav``: 72 files, mono 16-bit at 44.1 kHz, leading and trailing
silence trimmed, peak-normalised to -6 dBFS. Their median pitches, estimated with YIN as the benchmark
does, span MIDI 38-65 (73-349 Hz). espeak-ng is deterministic, so the set is the same on every run.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from vital_gym.audio import resample

SOUNDS = {"a": "[[a::::::::]]", "e": "[[e::::::::]]", "i": "[[i::::::::]]", "o": "[[o::::::::]]", "u": "[[u::::::::]]", "hum": "hmmmmmmmmm"}
VOICES = ("en+m3", "en", "en+f3")
PITCHES = (20, 50, 80, 99)
SAMPLE_RATE = 44100


def speak(text: str, voice: str, pitch: int, speed: int = 80) -> tuple[np.ndarray, int]:
    """espeak-ng's rendering of ``text``, as float32 mono and its sample rate."""
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "out.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-p", str(pitch), "-s", str(speed), "-w", str(wav), text], check=True, capture_output=True)
        audio, sr = sf.read(wav, dtype="float32")
    return audio, sr


def tidy(audio: np.ndarray, sample_rate: int, threshold_db: float = -40.0) -> np.ndarray:
    """Resampled to 44.1 kHz, silence trimmed at both ends, peak at -6 dBFS."""
    audio = resample(audio, sample_rate, SAMPLE_RATE)
    peak = float(np.max(np.abs(audio)))
    if peak == 0.0:
        raise ValueError("espeak-ng wrote silence")
    loud = np.flatnonzero(np.abs(audio) > peak * 10 ** (threshold_db / 20))
    audio = audio[loud[0] : loud[-1] + 1]
    return (0.5 * audio / peak).astype(np.float32)


def make_voice_set(out: str | Path, voices: Sequence[str] = VOICES, pitches: Sequence[int] = PITCHES) -> list[Path]:
    """Write the voice-like set into the folder ``out`` (created); the files written, in order. Other
    ``voices`` and ``pitches`` make another set of the same sounds (development clips, say).

    Raises FileNotFoundError when espeak-ng is not installed."""
    if shutil.which("espeak-ng") is None:
        raise FileNotFoundError("espeak-ng is not installed (Debian/Ubuntu: apt-get install espeak-ng)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for sound, text in SOUNDS.items():
        for voice in voices:
            for pitch in pitches:
                audio, sr = speak(text, voice, pitch)
                path = out / f"{sound}_{voice.replace('+', '-')}_p{pitch}.wav"
                sf.write(path, tidy(audio, sr), SAMPLE_RATE, subtype="PCM_16")
                paths.append(path)
    return paths
