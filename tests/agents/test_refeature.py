import numpy as np
import pytest

from agents.cli import main as cli
from agents.dataset import Manifest, generate, read_shard
from agents.dataset.refeature import refeature
from tests.agents.test_dataset import tiny_config

AUDIOMAE = {"frontend": "audiomae", "n_mels": 32}


@pytest.fixture(scope="module")
def with_audio(tmp_path_factory):
    """The tiny dataset's settings with its audio stored at 16 kHz (6 samples in 2 shards)."""
    folder = tmp_path_factory.mktemp("with_audio")
    generate(tiny_config(audio_sample_rate=16000), folder, 6, workers=1, progress=False)
    return folder


def test_features_of_the_stored_audio_are_what_generating_with_them_stores(tmp_path, with_audio):
    out = tmp_path / "out"
    manifest = refeature(with_audio, out, AUDIOMAE)
    direct = tmp_path / "direct"  # the same samples (same seed) generated with AudioMAE's features
    generate(tiny_config(audio_sample_rate=16000, observation=AUDIOMAE), direct, 6, workers=1, progress=False)
    assert manifest.config == Manifest.load(direct).config
    assert manifest.derived_from == {"folder": str(with_audio), "observation": tiny_config().observation}
    assert Manifest.load(out).verify(out) == [] and len(manifest.shards) == 2
    for name in sorted(manifest.shards):
        converted, generated, source = read_shard(out / name), read_shard(direct / name), read_shard(with_audio / name)
        assert all(np.array_equal(converted[k], source[k]) for k in source if k != "logmel")
        assert converted["logmel"].shape == generated["logmel"].shape == (3, 32, 23)
        loud = generated["logmel"] >= 60  # the int16 audio's own noise floor shows below (module docstring)
        assert np.abs(converted["logmel"].astype(int) - generated["logmel"])[loud].max() <= 1


def test_a_second_run_converts_only_what_is_missing(tmp_path, with_audio):
    out = tmp_path / "out"
    refeature(with_audio, out, AUDIOMAE)
    kept, lost = sorted(out.glob("shard-*.npz"))
    stamp = kept.stat().st_mtime_ns
    lost.unlink()
    manifest = refeature(with_audio, out, AUDIOMAE)
    assert lost.is_file() and kept.stat().st_mtime_ns == stamp and manifest.verify(out) == []


@pytest.mark.parametrize(
    "source, observation, problem",
    [
        ("tiny_dataset", AUDIOMAE, "stores audio at 8000 Hz; AudioMAE's filterbank reads 16 kHz"),
        ("with_audio", {"n_fft": 512, "hop_length": 256, "n_mels": 32}, "computed at the render's 44100 Hz"),
        ("no_audio", AUDIOMAE, "stores no audio"),
    ],
)
def test_audio_that_lacks_what_the_features_read_is_refused(tmp_path, request, source, observation, problem):
    if source == "no_audio":
        folder = tmp_path / "no_audio"
        generate(tiny_config(audio_sample_rate=None), folder, 3, workers=1, progress=False)
    else:
        folder = request.getfixturevalue(source)
    with pytest.raises(ValueError, match=problem):
        refeature(folder, tmp_path / "out", observation)
    assert not (tmp_path / "out").exists()


def test_an_output_folder_in_use_is_refused_and_left_alone(tmp_path, with_audio):
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="exists and is not empty"):
        refeature(with_audio, used, AUDIOMAE)
    with pytest.raises(ValueError, match="is the source folder"):
        refeature(with_audio, with_audio, AUDIOMAE)
    refeature(with_audio, tmp_path / "other", AUDIOMAE)
    with pytest.raises(ValueError, match="holds another dataset"):
        refeature(with_audio, tmp_path / "other", {"frontend": "audiomae", "n_mels": 16})
    assert [p.name for p in used.iterdir()] == ["notes.txt"] and len(Manifest.load(tmp_path / "other").shards) == 2


def test_a_corrupt_source_shard_is_named(tmp_path, with_audio):
    import shutil

    source = tmp_path / "source"
    shutil.copytree(with_audio, source)
    shard = sorted(source.glob("shard-*.npz"))[1]
    shard.write_bytes(shard.read_bytes()[:-10])
    with pytest.raises(ValueError, match=f"{shard} does not match its checksum"):
        refeature(source, tmp_path / "out", AUDIOMAE)
    assert len(Manifest.load(tmp_path / "out").shards) == 1  # the shard before it was converted and recorded


def test_the_features_command(tmp_path, with_audio, capsys):
    out = tmp_path / "out"
    assert cli(["dataset", "features", str(with_audio), "--out", str(out), "--observation", "frontend=audiomae", "n_mels=32", "--workers", "1"]) == 0
    assert "2 shards" in capsys.readouterr().out and Manifest.load(out).config["observation"] == AUDIOMAE
    assert cli(["dataset", "features", str(with_audio), "--out", str(tmp_path / "x"), "--observation", "frontend"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err


@pytest.mark.slow
def test_the_audiomae_filterbank_matches_kaldis_fbank():
    """``AudioMAEFilterbank.log_fbank`` against ``torchaudio.compliance.kaldi.fbank`` with AudioMAE's
    arguments, on noise, a sine, a chirp and a Vita render; torchaudio is not a dependency."""
    kaldi = pytest.importorskip("torchaudio.compliance.kaldi", reason="torchaudio is not installed (the reference filterbank)")
    import torch
    import vita

    from vital_gym.audio import resample
    from vital_gym.features import AudioMAEFilterbank, MelConfig

    rate = 44100
    t = np.arange(2 * rate) / rate
    rng = np.random.default_rng(0)
    signals = {
        "noise": rng.standard_normal((2, 2 * rate)).astype(np.float32) * 0.1,
        "sine": (0.5 * np.sin(2 * np.pi * 440 * t))[None].astype(np.float32),
        "chirp": (0.8 * np.sin(2 * np.pi * (100 + 2000 * t) * t))[None].astype(np.float32),
        "vita": np.asarray(vita.Synth().render(60, 0.8, 1.5, 2.0), dtype=np.float32),
    }
    ours = AudioMAEFilterbank(MelConfig(frontend="audiomae"), rate)
    for name, audio in signals.items():
        wave = torch.from_numpy(resample(audio.mean(axis=0), rate, 16000))[None]
        ref = kaldi.fbank(
            wave - wave.mean(), htk_compat=True, sample_frequency=16000, use_energy=False, window_type="hanning", num_mel_bins=128, dither=0.0, frame_shift=10
        ).numpy()
        loud = ref > -10
        assert np.abs(ours.log_fbank(audio) - ref)[loud].max() < 1e-2, name
