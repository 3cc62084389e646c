"""Log-mel spectrograms: the environment's observation of a sound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass(frozen=True)
class MelConfig:
    """A log-mel spectrogram scaled to [0, 1]: 0 is ``top_db`` below full scale, 1 is full scale (0 dBFS)."""

    n_fft: int = 2048
    hop_length: int = 512
    n_mels: int = 128
    f_min: float = 20.0
    f_max: float | None = None
    top_db: float = 80.0

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "MelConfig":
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown observation settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        return cls(**d)

    def num_frames(self, num_samples: int) -> int:
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
        mel = librosa.filters.mel(
            sr=sample_rate, n_fft=config.n_fft, n_mels=config.n_mels, fmin=config.f_min, fmax=config.f_max, norm=None
        )
        self._mel = torch.from_numpy(mel).float() * (2.0 / float(self._window.sum())) ** 2

    def __call__(self, audio: np.ndarray) -> np.ndarray:
        mono = torch.from_numpy(np.asarray(audio, dtype=np.float32).mean(axis=0))
        spec = torch.stft(
            mono, self.config.n_fft, self.config.hop_length, window=self._window, center=True, return_complex=True
        )
        power = spec.real**2 + spec.imag**2
        mel = self._mel @ power
        db = 10.0 * torch.log10(torch.clamp(mel, min=1e-10))
        out = torch.clamp((db + self.config.top_db) / self.config.top_db, 0.0, 1.0)
        return out.numpy().astype(np.float32)
