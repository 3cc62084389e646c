"""Make the README's picture: a target drawn like the training data, and what `vital-gym match` finds.

    python scripts/readme_example.py                 # writes docs/img/match_example.png

The target is sample 2 of the core dataset config drawn from seed 2026, which neither the training data,
the benchmark nor the critic pools use (a bass, played at MIDI 72). It is matched as `vital-gym match
target.wav -o match.vital --note 72` matches it (the shipped model and library), and the comparison image
is copied to docs/img/. Prints the match's summary.
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path

from agents.cli import main as cli
from agents.dataset.generate import REJECT_REASONS, DatasetConfig, SampleMaker
from vital_gym.audio import write_wav
from vital_gym.resources import find_config

SEED, SAMPLE = 2026, 2
OUT = Path(__file__).resolve().parents[1] / "docs" / "img" / "match_example.png"


def main() -> int:
    config = DatasetConfig.from_yaml(find_config("dataset", "core"))
    sample = SampleMaker(dataclasses.replace(config, seed=SEED, audio_sample_rate=None)).render_audible(SAMPLE, dict.fromkeys(REJECT_REASONS, 0))
    with tempfile.TemporaryDirectory() as tmp:
        target = write_wav(Path(tmp) / "target.wav", sample.result.audio, config.render["sample_rate"])
        status = cli(["match", str(target), "-o", str(Path(tmp) / "match.vital"), "--note", str(sample.note), "-q"])
        if status == 0:
            shutil.copyfile(Path(tmp) / "match.png", OUT)
            print(f"wrote {OUT}")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
