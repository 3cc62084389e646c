"""Spectrograms: the environment's observation of a sound, and what the encoder reads.

Two front ends, chosen by :attr:`MelConfig.frontend`; both give ``(n_mels, frames)`` float32 in [0, 1], so
the env's observation space, the datasets' uint8 storage and the model's input are the same for either:

* ``"vital"`` (:class:`LogMelSpectrogram`): this project's log-mel at the render's sample rate, in dB below
  full scale. The shipped model reads it.
* ``"audiomae"`` (:class:`AudioMAEFilterbank`): the Kaldi filterbank that AudioMAE's released weights were
  pre-trained on, normalised as AudioMAE normalises it. A model that loads those weights should read what
  they were trained on: the "vital" log-mel differs in sample rate, frame rate, band edges and scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from vital_gym.audio import resample

FRONTENDS = ("vital", "audiomae")


@dataclass(frozen=True)
class MelConfig:
    """A spectrogram scaled to [0, 1]. ``frontend`` "vital": a log-mel where 0 is ``top_db`` below full
    scale and 1 is full scale (0 dBFS), with the other fields' settings; "audiomae": AudioMAE's filterbank,
    whose settings are fixed (:class:`AudioMAEFilterbank`; only ``n_mels`` may change, and its released
    weights need 128)."""

    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    f_min: float = 20.0
    f_max: float | None = None
    top_db: float = 80.0
    frontend: str = "vital"

    def __post_init__(self) -> None:
        if self.frontend not in FRONTENDS:
            raise ValueError(f"observation frontend={self.frontend!r}: use one of {list(FRONTENDS)}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> MelConfig:
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown observation settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        fixed = sorted(set(d) - {"n_mels", "frontend"})
        if d.get("frontend") == "audiomae" and fixed:
            raise ValueError(
                f"observation settings {fixed} do not apply to the 'audiomae' frontend (25 ms frames every 10 ms "
                "at 16 kHz, as AudioMAE was trained); remove them"
            )
        return cls(**d)

    def num_frames(self, num_samples: int, sample_rate: int) -> int:
        """Frames of a clip of ``num_samples`` samples at ``sample_rate``."""
        if self.frontend == "audiomae":
            return AudioMAEFilterbank.num_frames(num_samples, sample_rate)
        return 1 + num_samples // self.hop_length


class LogMelSpectrogram:
    """``(channels, samples)`` audio -> ``(n_mels, frames)`` float32 in [0, 1], on the mono mix."""

    def __init__(self, config: MelConfig, sample_rate: int):
        import librosa

        if config.f_max is not None and config.f_max > sample_rate / 2:
            raise ValueError(f"f_max={config.f_max} is above the Nyquist frequency {sample_rate / 2}")
        self.config = config
        self.sample_rate = sample_rate
        self._window = torch.hann_window(config.n_fft)
        # Triangular bands with peak 1 (no area normalisation) and power scaled by the window's gain, so a
        # sine reads its own level at any frequency: full scale is about 0 dB, -40 dBFS about -40 dB.
        mel = librosa.filters.mel(sr=sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.f_min, fmax=config.f_max, norm=None)
        self._mel = torch.from_numpy(mel).float() * (2.0 / float(self._window.sum())) ** 2

    @property
    def unit_db(self) -> tuple[float, float]:
        """The levels (dB relative to full scale) that 0 and 1 stand for."""
        return -self.config.top_db, 0.0

    @property
    def frame_seconds(self) -> float:
        """Seconds between two frames (the hop)."""
        return self.config.hop_length / self.sample_rate

    @property
    def band_hz(self) -> np.ndarray:
        """``(n_mels,)`` each band's centre frequency in Hz."""
        import librosa

        f_max = self.sample_rate / 2 if self.config.f_max is None else self.config.f_max
        return librosa.mel_frequencies(self.config.n_mels + 2, fmin=self.config.f_min, fmax=f_max)[1:-1]

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        mono = torch.from_numpy(np.asarray(audio, dtype=np.float32).mean(axis=0))
        spec = torch.stft(mono, self.config.n_fft, self.config.hop_length, window=self._window, center=True, return_complex=True)
        power = spec.real**2 + spec.imag**2
        mel = self._mel @ power
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        out = torch.clamp((db + self.config.top_db) / self.config.top_db, 0.0, 1.0)
        return out.numpy().astype(np.float32)


class AudioMAEFilterbank:
    """``(channels, samples)`` audio -> ``(n_mels, frames)`` float32 in [0, 1]: AudioMAE's input features.

    AudioMAE computes ``torchaudio.compliance.kaldi.fbank(wave - wave.mean(), htk_compat=True,
    sample_frequency=16000, use_energy=False, window_type="hanning", num_mel_bins=128, dither=0.0,
    frame_shift=10)`` on 16 kHz audio in [-1, 1] (Kaldi's ``compute-fbank-feats``: 25 ms frames every 10 ms
    with their edges snipped, each frame's mean removed, pre-emphasis 0.97, a symmetric Hann window, a
    512-point FFT, power, triangular bands on Kaldi's mel scale from 20 Hz to 8 kHz, natural log floored at
    float32's epsilon), then ``(fbank - mean) / (2 * std)`` with AudioSet's mean and std. This class computes
    the same without torchaudio (the mono mix, resampled to 16 kHz) and stores the normalised value ``z``
    as ``(z - Z_FLOOR) / (Z_TOP - Z_FLOOR)``: 0 is the log floor (silence), 1 is far above a full-scale
    sine. :func:`audiomae_normalised` maps it back for the encoder, which pads short clips with ``Z_PAD``.
    """

    SAMPLE_RATE = 16000
    FRAME_LENGTH, FRAME_SHIFT, N_FFT = 400, 160, 512  # 25 ms, 10 ms, the next power of two
    F_MIN, PREEMPHASIS = 20.0, 0.97
    NORM_MEAN, NORM_STD = -4.2677393, 4.5689974  # AudioSet's, as AudioMAE's pre-training used
    EPSILON = float(np.finfo(np.float32).eps)  # Kaldi's floor under every band's energy
    LOG_FLOOR = math.log(EPSILON)
    Z_FLOOR = (LOG_FLOOR - NORM_MEAN) / (2 * NORM_STD)  # about -1.28: silence
    Z_TOP = 2.0  # a log energy of 14.0; a full-scale sine's peak band reads 7 at 1 kHz, 10 at 4 kHz
    Z_PAD = (0.0 - NORM_MEAN) / (2 * NORM_STD)  # AudioMAE pads a short clip's filterbank with zeros, then normalises
    # A full-scale sine's log power in its peak FFT bin before pre-emphasis: (sum(window) / 2) ** 2.
    FULL_SCALE_LOG = 2 * math.log(float(torch.hann_window(FRAME_LENGTH, periodic=False).sum()) / 2)

    def __init__(self, config: MelConfig, sample_rate: int):
        if config.frontend != "audiomae":
            raise ValueError(f"AudioMAEFilterbank needs frontend='audiomae', not {config.frontend!r}")
        self.config = config
        self.sample_rate = sample_rate
        self._window = torch.hann_window(self.FRAME_LENGTH, periodic=False, dtype=torch.float64)
        self._bands = torch.from_numpy(kaldi_mel_banks(config.n_mels, self.N_FFT, self.SAMPLE_RATE, self.F_MIN))

    @classmethod
    def num_frames(cls, num_samples: int, sample_rate: int) -> int:
        n = -(-num_samples * cls.SAMPLE_RATE // sample_rate)  # resample's output length: the ceiling
        if n < cls.FRAME_LENGTH:
            raise ValueError(f"{num_samples} samples at {sample_rate} Hz: AudioMAE's filterbank needs at least one 25 ms frame")
        return 1 + (n - cls.FRAME_LENGTH) // cls.FRAME_SHIFT

    @property
    def unit_db(self) -> tuple[float, float]:
        """The levels (dB relative to a full-scale sine's peak band) that 0 and 1 stand for."""
        to_db = 10.0 / math.log(10.0)

        def log_energy(z: float) -> float:
            return self.NORM_MEAN + 2 * self.NORM_STD * z

        return to_db * (log_energy(self.Z_FLOOR) - self.FULL_SCALE_LOG), to_db * (log_energy(self.Z_TOP) - self.FULL_SCALE_LOG)

    @property
    def frame_seconds(self) -> float:
        """Seconds between two frames (Kaldi's 10 ms shift)."""
        return self.FRAME_SHIFT / self.SAMPLE_RATE

    @property
    def band_hz(self) -> np.ndarray:
        """``(n_mels,)`` each band's centre frequency in Hz, on Kaldi's mel scale from 20 Hz to 8 kHz."""
        low, high = (1127.0 * math.log(1.0 + f / 700.0) for f in (self.F_MIN, self.SAMPLE_RATE / 2))
        centres = low + np.arange(1, self.config.n_mels + 1) * (high - low) / (self.config.n_mels + 1)
        return 700.0 * (np.exp(centres / 1127.0) - 1.0)

    def log_fbank(self, audio: np.ndarray) -> np.ndarray:
        """``(channels, samples)`` audio -> Kaldi's log filterbank ``(frames, n_mels)``, float64, unnormalised."""
        mono = np.asarray(audio, dtype=np.float32).mean(axis=0)
        self.num_frames(mono.shape[-1], self.sample_rate)  # refuses a clip shorter than one frame
        wave = torch.from_numpy(resample(mono, self.sample_rate, self.SAMPLE_RATE).astype(np.float64))
        wave = wave - wave.mean()
        frames = wave.unfold(0, self.FRAME_LENGTH, self.FRAME_SHIFT)  # (frames, 400), edges snipped
        frames = frames - frames.mean(dim=1, keepdim=True)
        previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # Kaldi repeats a frame's first sample
        frames = (frames - self.PREEMPHASIS * previous) * self._window
        power = torch.fft.rfft(frames, n=self.N_FFT).abs() ** 2  # (frames, 257)
        energies = power[:, :-1] @ self._bands.T  # Nyquist's bin is outside every band
        return torch.clamp(energies, min=self.EPSILON).log().numpy()

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        z = (self.log_fbank(audio) - self.NORM_MEAN) / (2 * self.NORM_STD)
        unit = np.clip((z - self.Z_FLOOR) / (self.Z_TOP - self.Z_FLOOR), 0.0, 1.0)
        return np.ascontiguousarray(unit.T).astype(np.float32)


def kaldi_mel_banks(n_mels: int, n_fft: int, sample_rate: int, f_min: float, f_max: float | None = None) -> np.ndarray:
    """Kaldi's triangular mel bands ``(n_mels, n_fft // 2)``: equally spaced on ``1127 ln(1 + f / 700)`` from
    ``f_min`` to ``f_max`` (default: Nyquist), each rising from its left neighbour's centre to its own and
    falling to its right neighbour's, peak 1, evaluated at the FFT bins' frequencies (Nyquist's excluded)."""
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0.0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(f"mel bands from {f_min} Hz to {f_max} Hz do not fit under Nyquist {sample_rate / 2} Hz")

    def mel(f: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(f, dtype=np.float64) / 700.0)

    edges = mel(f_min) + np.arange(n_mels + 2) * (mel(f_max) - mel(f_min)) / (n_mels + 1)
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    bins = mel(np.arange(n_fft // 2) * sample_rate / n_fft)[None, :]
    return np.maximum(0.0, np.minimum((bins - left) / (centre - left), (right - bins) / (right - centre)))


Spectrogram = LogMelSpectrogram | AudioMAEFilterbank


def spectrogram(config: MelConfig, sample_rate: int) -> Spectrogram:
    """The front end ``config`` names, for audio at ``sample_rate``."""
    return AudioMAEFilterbank(config, sample_rate) if config.frontend == "audiomae" else LogMelSpectrogram(config, sample_rate)


NEIGHBOUR_POOL = (2, 4)  # mel bands, frames averaged into one feature of a sound-alike search


def pool_logmel(logmel: torch.Tensor, pool: tuple[int, int] = NEIGHBOUR_POOL) -> torch.Tensor:
    """``(N, mels, frames)`` log-mels in [0, 1] -> ``(N, D)`` features averaged over ``pool`` blocks: what
    nearest neighbour in a dataset and the preset library compare, by Euclidean distance."""
    return torch.nn.functional.avg_pool2d(logmel[:, None], pool, ceil_mode=True).flatten(1)


def audiomae_normalised(unit: torch.Tensor) -> torch.Tensor:
    """ "audiomae" features in [0, 1] -> AudioMAE's normalised filterbank ``(fbank - mean) / (2 std)``."""
    f = AudioMAEFilterbank
    return f.Z_FLOOR + (f.Z_TOP - f.Z_FLOOR) * unit
