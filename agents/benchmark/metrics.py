"""How close a method's render is to its target, and its parameters to the truth where that is known.

Audio metrics take ``(1, samples)`` float32 at one sample rate, target and prediction rendered with the
same note and settings:

* ``mrstft``: the environment's multi-resolution STFT distance (auraloss formula, FFT sizes 64..2048);
* ``lsd``: log-spectral distance in dB, RMS over frequency of the power-spectrum difference, mean over
  frames (STFT 2048 / hop 512);
* ``mfcc``: mean absolute difference of 20 MFCCs (128 mel bands, librosa), over coefficients and frames;
* ``sc``: spectral convergence ``||S_t - S_p||_F / ||S_t||_F`` on STFT magnitudes (2048 / hop 512);
* ``clap``: cosine similarity of CLAP embeddings, when an embedder is given.

Lower is better for all but ``clap``. Parameter metrics compare vectors of the benchmark's space:
``param_mae`` (continuous parameters, normalised units), ``param_acc`` (categorical, integer and on/off
parameters outside the modulation slots) and ``route_f1`` (modulation routes as a set of (source,
destination) pairs, order-free).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from vital_gym.params import Kind, ParameterSpace
from vital_gym.preset import PresetCodec
from vital_gym.rewards import ClapEmbedder, MultiResolutionSTFTDistance

AUDIO_METRICS = ("mrstft", "lsd", "mfcc", "sc")
PARAM_METRICS = ("param_mae", "param_acc", "route_f1")
HIGHER_IS_BETTER = frozenset({"clap", "param_acc", "route_f1"})
_EPS = 1e-10


def _stft_power(audio: np.ndarray, n_fft: int = 2048, hop: int = 512) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(audio, dtype=np.float32).reshape(-1))
    spec = torch.stft(x, n_fft, hop, n_fft, torch.hann_window(n_fft), return_complex=True)
    return (spec.abs() ** 2).numpy()  # (bins, frames)


def log_spectral_distance(pred: np.ndarray, target: np.ndarray) -> float:
    diff = 10.0 * np.log10(_stft_power(pred) + _EPS) - 10.0 * np.log10(_stft_power(target) + _EPS)
    return float(np.mean(np.sqrt(np.mean(diff**2, axis=0))))


def spectral_convergence(pred: np.ndarray, target: np.ndarray) -> float:
    p, t = np.sqrt(_stft_power(pred)), np.sqrt(_stft_power(target))
    return float(np.linalg.norm(t - p) / max(np.linalg.norm(t), _EPS))


def mfcc_distance(pred: np.ndarray, target: np.ndarray, sample_rate: int, n_mfcc: int = 20) -> float:
    import librosa

    def mfcc(a: np.ndarray) -> np.ndarray:
        return librosa.feature.mfcc(y=np.asarray(a, dtype=np.float32).reshape(-1), sr=sample_rate, n_mfcc=n_mfcc, n_mels=128)

    return float(np.mean(np.abs(mfcc(pred) - mfcc(target))))


class AudioMetrics:
    """Every audio metric of a prediction against a target; ``clap`` only with an embedder."""

    def __init__(self, sample_rate: int, clap: ClapEmbedder | None = None):
        self.sample_rate = sample_rate
        self.mrstft = MultiResolutionSTFTDistance()
        self.clap = clap

    def __call__(self, pred: np.ndarray, target: np.ndarray) -> dict[str, float]:
        if pred.shape != target.shape:
            raise ValueError(f"prediction {pred.shape} and target {target.shape} differ in shape")
        out = {
            "mrstft": self.mrstft.distance(pred, target),
            "lsd": log_spectral_distance(pred, target),
            "mfcc": mfcc_distance(pred, target, self.sample_rate),
            "sc": spectral_convergence(pred, target),
        }
        if self.clap is not None:
            e = self.clap.embed(np.stack([pred, target]), self.sample_rate)  # (2, channels, samples)
            out["clap"] = float(np.dot(e[0], e[1]) / max(np.linalg.norm(e[0]) * np.linalg.norm(e[1]), _EPS))
        return out


class ParameterMetrics:
    """Parameter error between two vectors of one space."""

    def __init__(self, space: ParameterSpace):
        self.codec = PresetCodec(space)
        params = space.parameters
        slot = [p.name.startswith("mod_") for p in params]
        self.continuous = np.array([p.kind is Kind.CONTINUOUS and not s for p, s in zip(params, slot)])
        self.discrete = np.array([p.kind is not Kind.CONTINUOUS and not s for p, s in zip(params, slot)])

    def __call__(self, pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
        pred = self.codec.space.quantize(np.asarray(pred, dtype=np.float32))
        truth = self.codec.space.quantize(np.asarray(truth, dtype=np.float32))
        routes_p = {(s, d) for s, d, _ in self.codec.routes(pred)}
        routes_t = {(s, d) for s, d, _ in self.codec.routes(truth)}
        if routes_p or routes_t:
            f1 = 2 * len(routes_p & routes_t) / (len(routes_p) + len(routes_t))
        else:
            f1 = 1.0
        return {
            "param_mae": float(np.mean(np.abs(pred - truth)[self.continuous])),
            "param_acc": float(np.mean(np.isclose(pred, truth, atol=1e-6)[self.discrete])),
            "route_f1": f1,
        }


def mean_ci95(values: np.ndarray) -> tuple[float, float]:
    """Mean and the half-width of its 95% confidence interval (Student's t); NaNs ignored."""
    from scipy import stats

    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return float("nan"), float("nan")
    if v.size == 1:
        return float(v[0]), float("nan")
    half = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / np.sqrt(v.size)
    return float(v.mean()), float(half)


@dataclass(frozen=True)
class PairedDifference:
    """``a - b`` over items scored by both: their count, the mean difference and the half-width of its 95%
    confidence interval (Student's t), and the share of items where ``a`` is strictly lower."""

    n: int
    mean: float
    half: float
    wins: float

    @classmethod
    def of(cls, a: np.ndarray, b: np.ndarray) -> PairedDifference:
        d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
        mean, half = mean_ci95(d)
        return cls(int(d.size), mean, half, float(np.mean(d < 0)) if d.size else float("nan"))

    def __str__(self) -> str:
        return f"{self.mean:+.4f} ± {self.half:.4f} (closer on {self.wins:.0%})"
