"""Reading audio targets: any wav/flac/ogg, mono-mixed or kept stereo, resampled, trimmed or padded."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


class AudioFileError(ValueError):
    """An audio file that cannot be used as a target; the message names the file."""


def resample(audio: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling along the last axis (anti-aliased; exact for rational rate ratios)."""
    if from_rate == to_rate:
        return audio
    from scipy.signal import resample_poly

    ratio = Fraction(int(to_rate), int(from_rate))
    return resample_poly(audio, ratio.numerator, ratio.denominator, axis=-1).astype(np.float32)


def fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    """Trim or zero-pad the last axis to ``num_samples``."""
    n = audio.shape[-1]
    if n >= num_samples:
        return audio[..., :num_samples]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, num_samples - n)]
    return np.pad(audio, pad)


def load_audio(
    path: str | Path,
    sample_rate: int,
    num_samples: int | None = None,
    channels: int = 1,
    max_seconds: float = 600.0,
) -> np.ndarray:
    """Read ``path`` as float32 ``(channels, samples)`` at ``sample_rate``.

    Mono files are duplicated for ``channels=2``; multichannel files are averaged for ``channels=1``.
    Raises :class:`AudioFileError` (naming the file) for missing, empty, unreadable, overlong or non-finite
    audio.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioFileError(f"{path}: no such audio file")
    if path.stat().st_size == 0:
        raise AudioFileError(f"{path}: the file is empty")
    try:
        info = sf.info(str(path))
    except Exception as e:  # soundfile raises LibsndfileError / RuntimeError / TypeError
        raise AudioFileError(f"{path}: not a readable audio file ({e})") from None
    if info.frames == 0:
        raise AudioFileError(f"{path}: the file holds no audio frames")
    if info.frames / info.samplerate > max_seconds:
        raise AudioFileError(f"{path}: {info.frames / info.samplerate:.1f} s is longer than the {max_seconds:.0f} s limit")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioFileError(f"{path}: cannot decode ({e})") from None
    if not np.all(np.isfinite(data)):
        raise AudioFileError(f"{path}: contains NaN or Inf samples")
    audio = data.T  # (file_channels, frames)
    if channels == 1:
        audio = audio.mean(axis=0, keepdims=True)
    elif audio.shape[0] == 1:
        audio = np.repeat(audio, channels, axis=0)
    else:
        audio = audio[:channels]
    audio = resample(audio, int(rate), int(sample_rate))
    if num_samples is not None:
        audio = fit_length(audio, num_samples)
    return np.ascontiguousarray(audio, dtype=np.float32)


def estimate_midi_note(audio: np.ndarray, sample_rate: int, default: int = 60) -> int:
    """The clip's median pitch (YIN) over frames within 20 dB of its loudest, as the nearest MIDI note.

    ``default`` when the clip is silent. YIN rather than pYIN, many times slower, keeps ``vital-gym match``
    fast; on a clip with no pitch the answer is arbitrary but harmless (a note to play).
    """
    import librosa

    mono = np.asarray(audio, dtype=np.float32).reshape(-1, audio.shape[-1]).mean(axis=0)
    frame, hop = 2048, 512
    if mono.size < frame:
        mono = np.pad(mono, (0, frame - mono.size))
    rms = librosa.feature.rms(y=mono, frame_length=frame, hop_length=hop)[0]
    if not np.any(rms > 0):
        return default
    f0 = librosa.yin(mono, fmin=50.0, fmax=1600.0, sr=sample_rate, frame_length=frame, hop_length=hop)
    n = min(len(f0), len(rms))
    loud = rms[:n] >= 0.1 * rms.max()
    return int(np.clip(np.round(librosa.hz_to_midi(float(np.median(f0[:n][loud])))), 0, 127))


def write_wav(path: str | Path, audio: np.ndarray, sample_rate: int) -> Path:
    """Write ``(channels, samples)`` float audio as 16-bit PCM wav."""
    import soundfile as sf

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(audio, dtype=np.float32).T, int(sample_rate), subtype="PCM_16")
    return path


def seconds(num_samples: int, sample_rate: int) -> float:
    return num_samples / sample_rate if sample_rate else math.nan
