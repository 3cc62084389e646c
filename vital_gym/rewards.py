"""Rewards: a multi-resolution spectral distance (auraloss) and a CLAP embedding similarity (laion-clap).

The environment scores a render against its target with

    score = clap_weight * clap_similarity - spectral_weight * spectral_distance

and ``info`` carries every term. In one-shot episodes the reward is the score; in refine episodes it is
the score's improvement over the previous step.

Spectral distance. auraloss's ``MultiResolutionSTFTLoss`` with FFT sizes 64..2048 (hop = size / 4, Hann
window), log-magnitude and linear-magnitude L1 terms, and no spectral-convergence term (it divides by the
target's energy and explodes on quiet targets). :class:`MultiResolutionSTFTDistance` computes exactly
that loss (``tests/test_rewards.py`` checks it equals auraloss) but keeps the target's spectra, which an
episode compares against many renders, instead of recomputing them every call.

CLAP. Cosine similarity of LAION-CLAP audio embeddings (48 kHz mono input, resampled with a polyphase
filter; clips over 10 s are cut to their first 10 s, where laion-clap would crop at random). The
checkpoint comes from ``RewardConfig.clap_checkpoint`` or the ``VITAL_GYM_CLAP_CHECKPOINT`` environment
variable (a local ``.pt`` file such as ``630k-audioset-best.pt``); with ``clap_download=True`` laion-clap
downloads its own default checkpoint (needs the internet). ``clap_checkpoint="random"`` builds the real
architecture with random weights: it exercises the plumbing and measures cost, and its similarities mean
nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vital_gym.audio import resample

CLAP_SAMPLE_RATE = 48000
CLAP_MAX_SAMPLES = 480000
CLAP_CHECKPOINT_ENV = "VITAL_GYM_CLAP_CHECKPOINT"
DEFAULT_FFT_SIZES = (64, 128, 256, 512, 1024, 2048)


class ClapUnavailable(RuntimeError):
    """CLAP is weighted in the reward but no checkpoint can be had."""


@dataclass(frozen=True)
class RewardConfig:
    spectral_weight: float = 1.0
    clap_weight: float = 0.0
    fft_sizes: tuple[int, ...] = DEFAULT_FFT_SIZES
    hop_fraction: float = 0.25
    log_mag_weight: float = 1.0
    lin_mag_weight: float = 1.0
    clap_checkpoint: str | None = None
    clap_model: str = "HTSAT-tiny"
    clap_fusion: bool = False
    clap_download: bool = False
    clap_trust_checkpoint: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RewardConfig:
        d = dict(d or {})
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown reward settings {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}")
        if "fft_sizes" in d:
            d["fft_sizes"] = tuple(int(n) for n in d["fft_sizes"])
        cfg = cls(**d)
        if cfg.spectral_weight < 0 or cfg.clap_weight < 0:
            raise ValueError("reward weights must be >= 0")
        if not cfg.fft_sizes or any(n < 16 for n in cfg.fft_sizes):
            raise ValueError(f"fft_sizes must be a non-empty list of sizes >= 16, got {cfg.fft_sizes}")
        return cfg


class MultiResolutionSTFTDistance:
    """auraloss's MultiResolutionSTFTLoss (log + linear magnitude, no SC term), target spectra cached.

    Audio is ``(channels, samples)`` float32; the distance is averaged over resolutions, channels, frames
    and bins, so it does not grow with the clip's length.
    """

    def __init__(
        self,
        fft_sizes: tuple[int, ...] = DEFAULT_FFT_SIZES,
        hop_fraction: float = 0.25,
        log_mag_weight: float = 1.0,
        lin_mag_weight: float = 1.0,
        eps: float = 1e-8,
    ):
        self.fft_sizes = tuple(fft_sizes)
        self.hops = tuple(max(1, int(n * hop_fraction)) for n in self.fft_sizes)
        self.log_mag_weight = log_mag_weight
        self.lin_mag_weight = lin_mag_weight
        self.eps = eps
        self._windows = {n: torch.hann_window(n) for n in self.fft_sizes}
        self._target: list[tuple[torch.Tensor, torch.Tensor]] | None = None
        self._target_shape: tuple[int, ...] | None = None

    def _spectra(self, audio: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for n, hop in zip(self.fft_sizes, self.hops):
            spec = torch.stft(audio, n, hop, n, self._windows[n], return_complex=True)
            mag = torch.sqrt(torch.clamp(spec.real**2 + spec.imag**2, min=self.eps))
            out.append((mag, torch.log(mag)))
        return out

    def _compare(self, pred, target) -> torch.Tensor:
        total = torch.zeros(())
        for (mag, log_mag), (t_mag, t_log) in zip(pred, target):
            total = total + self.log_mag_weight * torch.mean(torch.abs(log_mag - t_log))
            total = total + self.lin_mag_weight * torch.mean(torch.abs(mag - t_mag))
        return total / len(self.fft_sizes)

    def set_target(self, target: np.ndarray) -> None:
        target = np.asarray(target, dtype=np.float32)
        self._target = self._spectra(torch.from_numpy(target))
        self._target_shape = target.shape

    def __call__(self, audio: np.ndarray) -> float:
        if self._target is None:
            raise RuntimeError("set_target() first")
        audio = np.asarray(audio, dtype=np.float32)
        if audio.shape != self._target_shape:
            raise ValueError(f"audio shape {audio.shape} differs from the target's {self._target_shape}")
        return float(self._compare(self._spectra(torch.from_numpy(audio)), self._target))

    def distance(self, audio: np.ndarray, target: np.ndarray) -> float:
        """One-off distance between two clips of the same shape."""
        a, t = (torch.from_numpy(np.asarray(v, dtype=np.float32)) for v in (audio, target))
        if a.shape != t.shape:
            raise ValueError(f"audio shape {tuple(a.shape)} differs from the target's {tuple(t.shape)}")
        return float(self._compare(self._spectra(a), self._spectra(t)))


def _audio_state_dict(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    return {k: v for k, v in state.items() if k.startswith(("audio_", "logit_scale_a"))}


class ClapEmbedder:
    """LAION-CLAP audio embeddings, ``(batch, 512)`` L2-normalised, from audio at any sample rate.

    Build with :meth:`from_config`; the model is laion-clap's own ``CLAP`` module. Offline, its text
    tower is built as laion-clap's small built-in transformer (the reward never uses text), and only the
    audio tower's weights are loaded from the checkpoint, every one of them checked present.
    """

    def __init__(self, model: torch.nn.Module, audio_cfg: dict[str, Any], fusion: bool, device: str = "cpu"):
        self.model = model.eval().to(device)
        self.audio_cfg = audio_cfg
        self.fusion = fusion
        self.device = device

    @classmethod
    def from_config(cls, config: RewardConfig, device: str | None = None) -> ClapEmbedder:
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        checkpoint = config.clap_checkpoint or os.environ.get(CLAP_CHECKPOINT_ENV)
        if checkpoint is None and not config.clap_download:
            raise ClapUnavailable(
                f"the reward weighs CLAP similarity (clap_weight={config.clap_weight}) but no CLAP checkpoint is "
                f"configured. Give a local laion-clap checkpoint with reward={{'clap_checkpoint': "
                f"'/path/to/630k-audioset-best.pt'}} or the {CLAP_CHECKPOINT_ENV} environment variable; or pass "
                f"reward={{'clap_download': True}} to let laion-clap download it (needs the internet); or set "
                f"reward={{'clap_weight': 0}} to train on the spectral distance alone."
            )
        if checkpoint is None:
            return cls._downloaded(config, device)
        path = None if checkpoint == "random" else Path(checkpoint).expanduser()
        if path is not None and not path.is_file():
            raise ClapUnavailable(f"CLAP checkpoint {path} does not exist")
        model, cfg = cls._build(config)
        if path is not None:
            try:
                state = torch.load(path, map_location="cpu", weights_only=not config.clap_trust_checkpoint)
            except Exception as e:
                raise ClapUnavailable(
                    f"cannot load CLAP checkpoint {path} as plain tensors ({e}). If you trust the file, set "
                    f"reward={{'clap_trust_checkpoint': True}} to unpickle it fully."
                ) from None
            cls._load_audio_weights(model, state, path)
        return cls(model, cfg["audio_cfg"], config.clap_fusion, device)

    @staticmethod
    def _build(config: RewardConfig):
        from laion_clap.clap_module import create_model

        fusion_type = "aff_2d" if config.clap_fusion else "None"
        return create_model(
            config.clap_model,
            "transformer",
            precision="fp32",
            device="cpu",
            enable_fusion=config.clap_fusion,
            fusion_type=fusion_type,
        )

    @staticmethod
    def _load_audio_weights(model: torch.nn.Module, state: dict, path: Path) -> None:
        audio_state = _audio_state_dict(state)
        expected = _audio_state_dict(model.state_dict())
        missing = sorted(set(expected) - set(audio_state))
        unexpected = sorted(set(audio_state) - set(expected))
        if missing or unexpected:
            raise ClapUnavailable(
                f"CLAP checkpoint {path} does not fit this architecture: {len(missing)} audio weights missing "
                f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}); check clap_model "
                f"and clap_fusion"
            )
        bad = [k for k in expected if tuple(audio_state[k].shape) != tuple(expected[k].shape)]
        if bad:
            raise ClapUnavailable(f"CLAP checkpoint {path}: shape mismatch for {bad[:3]}")
        model.load_state_dict(audio_state, strict=False)

    @classmethod
    def _downloaded(cls, config: RewardConfig, device: str) -> ClapEmbedder:
        import laion_clap

        module = laion_clap.CLAP_Module(enable_fusion=config.clap_fusion, amodel=config.clap_model, device="cpu")
        module.load_ckpt()  # laion-clap's own download of its default checkpoint for this architecture
        return cls(module.model, module.model_cfg["audio_cfg"], config.clap_fusion, device)

    @torch.no_grad()
    def embed(self, audio: np.ndarray, sample_rate: int) -> np.ndarray:
        """``(batch, channels, samples)`` or ``(channels, samples)`` -> ``(batch, 512)`` float32."""
        from laion_clap.training.data import get_audio_features

        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 2:
            audio = audio[None]
        mono = resample(audio.mean(axis=1), sample_rate, CLAP_SAMPLE_RATE)[:, :CLAP_MAX_SAMPLES]
        # laion-clap quantises to int16 before embedding; do the same so scores match its own API.
        mono = (np.clip(mono, -1.0, 1.0) * 32767.0).astype(np.int16).astype(np.float32) / 32767.0
        batch = [
            get_audio_features(
                {},
                torch.from_numpy(np.ascontiguousarray(clip)),
                CLAP_MAX_SAMPLES,
                data_truncating="fusion" if self.fusion else "rand_trunc",
                data_filling="repeatpad",
                audio_cfg=self.audio_cfg,
                require_grad=False,
            )
            for clip in mono
        ]
        for item in batch:
            for k, v in item.items():
                if isinstance(v, torch.Tensor):
                    item[k] = v.to(self.device)
        return self.model.get_audio_embedding(batch).cpu().numpy().astype(np.float32)


@dataclass
class RewardTerms:
    score: float
    spectral_distance: float
    clap_similarity: float | None = None
    extras: dict[str, float] = field(default_factory=dict)

    def as_info(self) -> dict[str, float]:
        out = {"score": self.score, "spectral_distance": self.spectral_distance}
        if self.clap_similarity is not None:
            out["clap_similarity"] = self.clap_similarity
        return out


class Reward:
    """The weighted score of a render against the current target; the target is embedded once."""

    def __init__(self, config: RewardConfig, sample_rate: int, clap: ClapEmbedder | None = None):
        self.config = config
        self.sample_rate = sample_rate
        self.spectral = MultiResolutionSTFTDistance(config.fft_sizes, config.hop_fraction, config.log_mag_weight, config.lin_mag_weight)
        self.clap = clap
        if config.clap_weight > 0 and clap is None:
            self.clap = ClapEmbedder.from_config(config)
        self._target_embedding: np.ndarray | None = None

    def set_target(self, target: np.ndarray) -> None:
        self.spectral.set_target(target)
        if self.clap is not None and self.config.clap_weight > 0:
            self._target_embedding = self.clap.embed(target, self.sample_rate)[0]

    def __call__(self, audio: np.ndarray) -> RewardTerms:
        distance = self.spectral(audio)  # always computed: refine episodes end on it
        similarity = None
        if self._target_embedding is not None:
            similarity = float(self.clap.embed(audio, self.sample_rate)[0] @ self._target_embedding)
        score = -self.config.spectral_weight * distance + self.config.clap_weight * (similarity or 0.0)
        return RewardTerms(score=float(score), spectral_distance=float(distance), clap_similarity=similarity)
