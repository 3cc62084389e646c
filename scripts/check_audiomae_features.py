"""How close this project's AudioMAE filterbank is to Kaldi's, and features from stored audio to rendered ones.

1. ``--kaldi PATH``: ``vital_gym.features.AudioMAEFilterbank.log_fbank`` against
   ``torchaudio.compliance.kaldi.fbank`` with AudioMAE's arguments, on noise, a sine, a chirp, near-silence
   and a Vita render. torchaudio is not a dependency: give its ``compliance/kaldi.py`` (unzip it from a
   wheel, ``pip download --no-deps torchaudio``); it is loaded with a stand-in ``torchaudio`` module.
2. ``--n N``: N samples of ``configs/dataset/core.yaml`` generated with the "audiomae" observation into a
   temporary folder; their stored features (from the float render) against those ``vital-gym dataset
   features`` computes from the stored int16 audio, by stored level.

    python scripts/check_audiomae_features.py --kaldi /tmp/ta/torchaudio/compliance/kaldi.py --n 40
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import types
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from agents.dataset import DatasetConfig, generate, read_shard  # noqa: E402
from agents.dataset.refeature import refeature  # noqa: E402
from vital_gym.audio import resample  # noqa: E402
from vital_gym.features import AudioMAEFilterbank, MelConfig  # noqa: E402

RATE = 44100


def signals() -> dict[str, np.ndarray]:
    import vita

    t = np.arange(2 * RATE) / RATE
    rng = np.random.default_rng(0)
    synth = vita.Synth()
    return {
        "noise": rng.standard_normal((2, 2 * RATE)).astype(np.float32) * 0.1,
        "sine 440 Hz": (0.5 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32),
        "chirp": (0.8 * np.sin(2 * np.pi * (100 + 2000 * t) * t))[None].astype(np.float32),
        "near-silence": (1e-4 * rng.standard_normal((1, 2 * RATE))).astype(np.float32),
        "Vita init preset": np.asarray(synth.render(60, 0.8, 1.5, 2.0), dtype=np.float32),
    }


def against_kaldi(kaldi_py: Path) -> None:
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))  # kaldi.py only imports it
    spec = importlib.util.spec_from_file_location("kaldi", kaldi_py)
    kaldi = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kaldi)
    ours = AudioMAEFilterbank(MelConfig(frontend="audiomae"), RATE)
    for name, audio in signals().items():
        wave = torch.from_numpy(resample(audio.mean(axis=0), RATE, 16000))[None]
        ref = kaldi.fbank(wave - wave.mean(), htk_compat=True, sample_frequency=16000, use_energy=False, window_type="hanning",
                          num_mel_bins=128, dither=0.0, frame_shift=10).numpy()
        diff = np.abs(ours.log_fbank(audio) - ref)
        loud = ref > -10
        print(f"{name:18s} {ref.shape}: max |difference| {diff.max():.2e}; where the log energy is above -10: "
              f"{diff[loud].max() if loud.any() else float('nan'):.2e}")


def stored_against_rendered(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        config = DatasetConfig.from_yaml("configs/dataset/core.yaml", observation={"frontend": "audiomae"}, shard_size=20)
        generate(config, Path(tmp) / "rendered", n, workers=1, progress=False)
        refeature(Path(tmp) / "rendered", Path(tmp) / "stored", {"frontend": "audiomae"})
        names = sorted(p.name for p in (Path(tmp) / "rendered").glob("shard-*.npz"))
        rendered = np.concatenate([read_shard(Path(tmp) / "rendered" / m, ("logmel",))["logmel"] for m in names]).astype(int)
        stored = np.concatenate([read_shard(Path(tmp) / "stored" / m, ("logmel",))["logmel"] for m in names]).astype(int)
    diff = np.abs(stored - rendered)
    print(f"{n} samples: uint8 levels of features from the stored audio against the rendered ones")
    for low, high in [(0, 20), (20, 40), (40, 60), (60, 80), (80, 256)]:
        at = (rendered >= low) & (rendered < high)
        print(f"  level {low:3d}-{high - 1:3d}: {at.sum():7d} entries, max difference {diff[at].max()}, "
              f"share above 1: {(diff[at] > 1).mean():.4f}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kaldi", type=Path, help="torchaudio's compliance/kaldi.py, the reference")
    ap.add_argument("--n", type=int, default=0, help="samples for the stored-audio comparison (0: skip it)")
    args = ap.parse_args(argv)
    if args.kaldi is not None:
        against_kaldi(args.kaldi)
    if args.n > 0:
        stored_against_rendered(args.n)


if __name__ == "__main__":
    main()
