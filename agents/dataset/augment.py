"""Light audio degradation applied at load time, on the stored log-mel (no re-rendering).

Real targets (a phone recording, a vocal imitation) carry a noise floor and a coloured frequency
response that clean Vita renders lack. :class:`LogMelAugment` imitates both on the ``[0, 1]`` spectrogram the
dataset stores, in the power domain; ``unit_db`` says which levels 0 and 1 stand for (the front end's
``unit_db``: ``(-80, 0)`` dB relative to full scale for the "vital" log-mel):

* noise: a constant power per mel band (equal power per band, i.e. roughly pink noise) at a level drawn
  uniformly in ``noise_db`` (dB relative to full scale), added to the spectrogram's power;
* EQ: a smooth random gain curve over the mel bands (a sum of ``eq_terms`` cosines, its peak drawn
  uniformly up to ``eq_db``), multiplied onto the power.

Each is applied with probability ``p``. Draws come from the generator the loader passes, seeded by
``(seed, epoch)``, so an epoch's augmentation is reproducible. The parameters stay the truth: these are
recording conditions, not different presets.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class LogMelAugment:
    unit_db: tuple[float, float] = (-80.0, 0.0)
    noise_db: tuple[float, float] = (-75.0, -45.0)
    eq_db: float = 6.0
    eq_terms: int = 3
    p: float = 0.5

    def __call__(self, logmel: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``(n_mels, frames)`` (or with a leading channel axis) in [0, 1] -> the same shape, degraded."""
        x = np.asarray(logmel, dtype=np.float32)
        low, high = self.unit_db
        db = low + x * (high - low)
        power = 10.0 ** (db / 10.0)
        n_mels = x.shape[-2]
        if rng.random() < self.p:
            bands = np.linspace(0.0, np.pi, n_mels)
            curve = sum(rng.normal() * np.cos((k + 1) * bands + rng.uniform(0, 2 * np.pi)) for k in range(self.eq_terms))
            curve = curve / max(np.max(np.abs(curve)), 1e-9) * rng.uniform(0.0, self.eq_db)
            power = power * (10.0 ** (curve / 10.0))[:, None]
        if rng.random() < self.p:
            power = power + 10.0 ** (rng.uniform(*self.noise_db) / 10.0)
        out = (10.0 * np.log10(np.maximum(power, 1e-30)) - low) / (high - low)
        return np.clip(out, 0.0, 1.0).astype(np.float32)
