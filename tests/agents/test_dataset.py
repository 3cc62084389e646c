import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from agents.dataset import DatasetConfig, InterleavedDatasets, Manifest, ShardDataset, generate, read_shard
from agents.dataset.generate import SampleMaker
from agents.dataset.shards import as_stored, dequantise, quantise, shard_name
from tests.conftest import TINY_SPACE


def tiny_config(**changes):
    d = {
        "space": TINY_SPACE,
        "seed": 3,
        "shard_size": 3,
        "render": {"note_seconds": 0.15, "render_seconds": 0.25},
        "observation": {"n_fft": 512, "hop_length": 256, "n_mels": 32},
        "audio_sample_rate": 8000,
        "midi_notes": [48, 60, 72],
        "velocity": [0.5, 1.0],
        "sources": {"uniform": {"weight": 0.5}, "pluck": {"weight": 0.5, "priors": {"env_1_attack": {"low": 0.0, "high": 0.1}}}},
    }
    d.update(changes)
    return DatasetConfig.from_dict(d)


def load_all(folder):
    m = Manifest.load(folder)
    shards = [read_shard(folder / n) for n in sorted(m.shards)]
    return {k: np.concatenate([s[k] for s in shards]) for k in shards[0] if k != "rejected"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """A complete 8-sample dataset made by one worker."""
    folder = tmp_path_factory.mktemp("one_worker")
    manifest = generate(tiny_config(), folder, 8, workers=1, progress=False)
    return folder, manifest


def test_layout_manifest_and_checksums(reference):
    folder, manifest = reference
    assert sorted(manifest.shards) == [shard_name(i) for i in range(3)]  # 3 + 3 + 2
    assert manifest.verify(folder) == []
    data = load_all(folder)
    assert np.array_equal(data["index"], np.arange(8))
    assert data["params"].shape == (8, len(manifest.param_names)) and data["params"].dtype == np.float32
    assert data["discrete"].shape == (8, len(manifest.discrete_names))
    assert data["logmel"].dtype == np.uint8 and data["logmel"].shape[1] == 32
    assert data["audio"].dtype == np.int16 and data["audio"].shape == (8, 2000)
    assert set(data["midi_note"]) <= {48, 60, 72}
    assert manifest.vita_version and manifest.space_fingerprint


def test_silent_renders_are_rejected_and_counted(reference):
    folder, manifest = reference
    data = load_all(folder)
    rms = np.sqrt(np.mean((data["audio"].astype(np.float64) / 32768) ** 2, axis=1))
    assert np.all(rms > 1e-5)
    # the tiny space's uniform source turns oscillator 1 off half the time: those draws are silent
    assert manifest.rejected["silent"] == int(np.sum(data["attempts"] - 1)) > 0


def test_same_samples_whatever_the_number_of_workers(reference, tmp_path):
    generate(tiny_config(), tmp_path, 8, workers=2, progress=False)
    one, two = load_all(reference[0]), load_all(tmp_path)
    for key in one:
        np.testing.assert_array_equal(one[key], two[key], err_msg=key)


def test_sample_draws_are_deterministic_and_stored_params_reproduce():
    maker = SampleMaker(tiny_config())
    a, b = maker.draw(5, 0), maker.draw(5, 0)
    np.testing.assert_array_equal(a[0], b[0])
    assert a[4] == -1  # not perturbed from a human preset
    assert a[1:] == b[1:]
    assert not np.array_equal(maker.draw(5, 1)[0], a[0])


def run_until_first_shard(out, n, shard_size=3):
    """A ``generate`` run in its own process group, returned once its first shard is on disk."""
    code = (
        "from agents.dataset import generate; from tests.agents.test_dataset import tiny_config;"
        f"generate(tiny_config(shard_size={shard_size}), {str(out)!r}, {n}, workers=1, progress=False)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=os.getcwd(), start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / shard_name(0)).exists():
        time.sleep(0.02)
    return proc


def test_resume_after_kill(reference, tmp_path):
    """kill -9 mid-run, then the same command finishes with exactly N valid samples, none twice."""
    out = tmp_path / "killed"
    proc = run_until_first_shard(out, 8)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (out / shard_name(0)).exists() and not (out / shard_name(2)).exists()
    (out / ".shard-00002.leftover.tmp").write_bytes(b"half a shard")  # what a kill mid-write leaves
    manifest = generate(tiny_config(), out, 8, workers=1, progress=False)
    assert manifest.verify(out) == [] and len(manifest.shards) == 3
    assert not list(out.glob("*.tmp"))
    resumed = load_all(out)
    assert np.array_equal(resumed["index"], np.arange(8))
    np.testing.assert_array_equal(resumed["params"], load_all(reference[0])["params"])


def test_workers_stop_when_the_run_is_killed(tmp_path):
    """A killed parent (not its process group) leaves no worker finishing shards beside a resumed run."""
    out = tmp_path / "orphaned"
    proc = run_until_first_shard(out, 80, shard_size=40)
    proc.kill()  # the parent only, as SIGTERM/SIGKILL to its pid does
    proc.wait()
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            os.killpg(proc.pid, 0)  # any process of the run still alive?
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail("worker processes outlived the killed run")
    assert (out / shard_name(0)).exists() and not (out / shard_name(1)).exists()


def test_corrupt_shard_is_detected_and_regenerated(reference, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reference[0], out)
    path = out / shard_name(1)
    raw = bytearray(path.read_bytes())
    raw[-100] ^= 0xFF
    path.write_bytes(bytes(raw))
    assert Manifest.load(out).verify(out) == [shard_name(1)]
    manifest = generate(tiny_config(), out, 8, workers=1, progress=False)
    assert manifest.verify(out) == []


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"velocity": [0.0, 1.0]}, "velocity"),
        ({"midi_notes": [200]}, "midi_notes"),
        ({"sources": {}}, "sources"),
        ({"colour": "blue"}, "unknown dataset settings"),
    ],
)
def test_bad_configs(changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_config(**changes)


def test_resuming_with_other_settings_is_refused(reference, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(reference[0], out)
    with pytest.raises(ValueError, match="another config"):
        generate(tiny_config(seed=4), out, 8, workers=1, progress=False)


def test_loader_shapes_and_types(reference):
    ds = ShardDataset(reference[0], fields=("logmel", "params", "discrete", "audio", "index"))
    item = next(iter(ds))
    assert item["logmel"].shape == (1, 32, 1 + int(0.25 * 44100) // 256)  # 0.25 s at 44.1 kHz, hop 256
    assert item["logmel"].dtype == torch.float32 and 0 <= item["logmel"].min() and item["logmel"].max() <= 1
    assert item["params"].dtype == torch.float32 and item["discrete"].dtype == torch.int64
    assert item["audio"].dtype == torch.float32 and item["audio"].abs().max() <= 1
    assert len(ds) == 8


def test_loader_shuffles_per_epoch_and_covers_every_sample_once(reference):
    ds = ShardDataset(reference[0], fields=("index",), seed=1, buffer_shards=2)
    first = [int(x["index"]) for x in ds]
    ds.set_epoch(1)
    second = [int(x["index"]) for x in ds]
    assert sorted(first) == sorted(second) == list(range(8))
    assert first != second
    ordered = [int(x["index"]) for x in ShardDataset(reference[0], fields=("index",), shuffle=False)]
    assert ordered == list(range(8))


def test_loader_source_weights_keep_only_weighted_sources(reference):
    sources = {int(x["index"]): int(x["source"]) for x in ShardDataset(reference[0], fields=("index", "source"), shuffle=False)}
    assert set(sources.values()) == {0, 1}  # both sources drawn in the 8 samples
    for weights, kept in (({"pluck": 0.0}, {0}), ({"uniform": 0.0}, {1}), ({"uniform": 2.0, "pluck": 2.0}, {0, 1})):
        ds = ShardDataset(reference[0], fields=("index",), seed=1, source_weights=weights)
        seen = [int(x["index"]) for x in ds]
        assert {sources[i] for i in seen} == kept
        assert sorted(seen) == sorted(i for i, s in sources.items() if s in kept)  # weight max: every sample, once


def test_loader_source_weights_thin_a_source_reproducibly(reference):
    ds = ShardDataset(reference[0], fields=("index",), seed=1, source_weights={"uniform": 0.5})
    epochs = []
    for epoch in range(30):
        ds.set_epoch(epoch)
        epochs.append([int(x["index"]) for x in ds])
    ds.set_epoch(3)
    assert [int(x["index"]) for x in ds] == epochs[3]
    assert min(map(len, epochs)) < max(map(len, epochs))  # the thinned source is drawn anew each epoch


@pytest.mark.parametrize("weights, problem", [({"drums": 1.0}, "drums"), ({"uniform": -1.0}, ">= 0"), ({"uniform": 0.0, "pluck": 0.0}, "> 0")])
def test_loader_source_weights_refuse_bad_input(reference, weights, problem):
    with pytest.raises(ValueError, match=problem):
        ShardDataset(reference[0], source_weights=weights)


def test_loader_labels_need_a_labelled_dataset(reference):
    with pytest.raises(ValueError, match="no label"):
        ShardDataset(reference[0], labels=[1])


def test_loader_splits_shards_between_workers(reference):
    from torch.utils.data import DataLoader

    ds = ShardDataset(reference[0], fields=("index",))
    seen = [int(i) for batch in DataLoader(ds, batch_size=2, num_workers=2) for i in batch["index"]]
    assert sorted(seen) == list(range(8))


def interleaved(folder, seed=1):
    """The reference's first shard and its other shards as two datasets (indices 0-2 and 3-7)."""
    shards = sorted(Manifest.load(folder).shards)
    parts = [ShardDataset(folder, fields=("index",), seed=seed, shards=s) for s in (shards[:1], shards[1:])]
    return InterleavedDatasets(parts, seed=seed)


def test_interleaved_datasets_yield_each_sample_once_mixed_and_reproducibly(reference):
    ds = interleaved(reference[0])
    assert len(ds) == 8
    epochs = []
    for epoch in range(4):
        ds.set_epoch(epoch)
        epochs.append([int(x["index"]) for x in ds])
    assert all(sorted(e) == list(range(8)) for e in epochs)
    assert any(max(e.index(i) for i in range(3)) > 2 for e in epochs)  # the first dataset's samples not all first
    assert len({tuple(e) for e in epochs}) > 1
    again = interleaved(reference[0])
    again.set_epoch(2)
    assert [int(x["index"]) for x in again] == epochs[2]


def test_interleaved_datasets_split_between_workers(reference):
    from torch.utils.data import DataLoader

    seen = [int(i) for batch in DataLoader(interleaved(reference[0]), batch_size=2, num_workers=2) for i in batch["index"]]
    assert sorted(seen) == list(range(8))
    with pytest.raises(ValueError, match="at least one"):
        InterleavedDatasets([])


def test_discrete_indices_match_the_parameter_vector(reference):
    maker = SampleMaker(tiny_config())
    data = load_all(reference[0])
    for x, stored in zip(data["params"], data["discrete"]):
        np.testing.assert_array_equal(maker.discrete_indices(x), stored)
    model = maker.space["filter_1_model"]
    column = Manifest.load(reference[0]).discrete_names.index("filter_1_model")
    assert data["discrete"][:, column].max() < model.n_values


@pytest.fixture
def human_folder(tmp_path):
    from vital_gym.preset import init_preset

    folder = tmp_path / "humans"
    folder.mkdir()
    init_preset().with_values({"osc_1_transpose": 7.0, "filter_1_on": 1.0, "osc_2_on": 1.0, "osc_2_level": 0.3}).save(folder / "a.vital")
    init_preset().with_values({"env_1_attack": 0.8, "osc_2_on": 1.0}).save(folder / "b.vital")
    (folder / "broken.vital").write_text("{not json")
    return folder


def test_perturbations_of_human_presets(human_folder, tmp_path):
    sources = {"human": {"weight": 1.0, "presets": str(human_folder), "jitter": 0.02, "p_change": 0.0}}
    with pytest.warns(UserWarning, match="broken.vital"):
        manifest = generate(tiny_config(sources=sources), tmp_path / "out", 6, workers=1, progress=False)
    assert manifest.base_presets == ["a.vital", "b.vital"]
    data = load_all(tmp_path / "out")
    with pytest.warns(UserWarning):
        maker = SampleMaker(tiny_config(sources=sources))
    continuous = [i for i, p in enumerate(maker.space.parameters) if p.kind.value == "continuous" and p.is_control]
    discrete = [i for i, p in enumerate(maker.space.parameters) if p.kind.value in ("categorical", "toggle") and p.is_control]
    for x, base in zip(data["params"], data["base"]):
        x0 = maker.bases[base].vector
        assert np.max(np.abs(x[continuous] - x0[continuous])) < 0.12  # 6 sigma of the jitter
        np.testing.assert_array_equal(x[discrete], x0[discrete])  # p_change = 0
        preset = maker.codec_for(int(base)).to_preset(x)
        assert preset.settings["osc_2_on"] == 1.0  # outside the space: the human preset's value


def test_perturbation_source_needs_a_usable_preset(tmp_path):
    with pytest.raises(ValueError, match="no usable .vital preset"):
        SampleMaker(tiny_config(sources={"human": {"weight": 1.0, "presets": str(tmp_path)}}))


def test_logmel_augmentation_adds_a_noise_floor_and_colour_reproducibly(reference):
    from agents.dataset.augment import LogMelAugment

    logmel = np.zeros((32, 20), np.float32)  # silence: 80 dB below full scale
    logmel[10] = 0.75  # one band at -20 dB
    noisy = LogMelAugment(noise_db=(-40.0, -40.0), eq_db=0.0, p=1.0)(logmel, np.random.default_rng(0))
    assert np.allclose(noisy[0], 0.5, atol=1e-4)  # the floor now reads -40 dB
    assert np.allclose(noisy[10], (10 * np.log10(10**-2 + 10**-4) + 80) / 80, atol=1e-4)
    eq = LogMelAugment(eq_db=6.0, noise_db=(-200.0, -200.0), p=1.0)(logmel, np.random.default_rng(1))
    shift_db = (eq[10] - logmel[10]) * 80
    assert np.all(np.abs(shift_db) <= 6.0 + 1e-3) and np.allclose(shift_db, shift_db[0])  # one gain per band
    assert np.array_equal(LogMelAugment(p=0.0)(logmel, np.random.default_rng(2)), logmel)
    # Through the loader: same seed and epoch, same degradation; the stored data is untouched.
    a = [x["logmel"] for x in ShardDataset(reference[0], seed=3, augment=LogMelAugment(p=1.0))]
    b = [x["logmel"] for x in ShardDataset(reference[0], seed=3, augment=LogMelAugment(p=1.0))]
    clean = [x["logmel"] for x in ShardDataset(reference[0], seed=3)]
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not all(torch.equal(x, y) for x, y in zip(a, clean))
    assert all(float(x.min()) >= 0.0 and float(x.max()) <= 1.0 for x in a)


def test_a_tensor_as_stored_is_what_the_shard_gives_back():
    features = np.random.default_rng(0).uniform(0, 1, (2, 32, 9)).astype(np.float32)
    features[0, 0, :3] = [0.5 / 255, 1.5 / 255, 1.0]  # ties round to even, as numpy does
    stored = as_stored(torch.from_numpy(features)).numpy()
    assert np.array_equal(stored, dequantise(quantise(features))) and not np.array_equal(stored, features)
