import csv
import json
import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from agents.benchmark.methods import LibraryLookup, MeanPreset, NearestNeighbour, Syntheon
from agents.benchmark.metrics import AudioMetrics, ParameterMetrics, mean_ci95
from agents.benchmark.run import BenchmarkConfig, Result, example_images, markdown_report, run_benchmark, summarise, summarise_by_source
from agents.benchmark.testsets import TEST_SEED, TestItem, audio_set, synthetic_set
from agents.cli import main as cli
from agents.dataset import generate
from tests.agents.test_dataset import load_all, tiny_config
from vital_gym.audio import write_wav
from vital_gym.render import RenderConfig, Renderer

SR = 44100
REPO = Path(__file__).resolve().parents[2]


def tone(freq: float, seconds: float = 0.25, harmonics: int = 6) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, harmonics + 1))
    return (0.3 * x / np.max(np.abs(x)))[None].astype(np.float32)


@pytest.fixture(scope="module")
def tiny_render() -> RenderConfig:
    return RenderConfig.from_dict(tiny_config().render)


@pytest.fixture(scope="module")
def preset_folder(tmp_path_factory, tiny_codec, tiny_space, tiny_render):
    """Four audible presets of the tiny space saved as .vital files, plus an exact copy of the first."""
    folder = tmp_path_factory.mktemp("presets")
    rng, renderer, k = np.random.default_rng(5), Renderer(tiny_render), 0
    while k < 4:
        preset = tiny_codec.to_preset(tiny_space.sample(rng), name=f"p{k}")
        if renderer.render(preset).status.ok:
            preset.save(folder / f"p{k}.vital")
            k += 1
    shutil.copy(folder / "p0.vital", folder / "p0-copy.vital")
    return folder


# ------------------------------------------------------------------ metrics
def test_audio_metrics_are_zero_on_identical_audio_and_grow_with_difference():
    metrics = AudioMetrics(SR)
    a, b = tone(220.0), tone(330.0)
    same = metrics(a, a)
    assert same["mrstft"] == pytest.approx(0.0, abs=1e-6)
    assert same["lsd"] == pytest.approx(0.0, abs=1e-6) and same["mfcc"] == pytest.approx(0.0, abs=1e-6)
    assert same["sc"] == pytest.approx(0.0, abs=1e-6)
    other = metrics(b, a)
    assert all(other[m] > 0.1 for m in ("mrstft", "lsd", "mfcc", "sc"))
    with pytest.raises(ValueError, match="differ in shape"):
        metrics(a[:, :100], a)


def test_audio_metrics_clap_term_uses_the_embedder(random_clap):
    scores = AudioMetrics(SR, random_clap)(tone(220.0), tone(220.0))
    assert scores["clap"] == pytest.approx(1.0, abs=1e-4)


def test_parameter_metrics(tiny_space, tiny_codec, rng):
    metrics = ParameterMetrics(tiny_space)
    x = tiny_codec.canonical(tiny_space.sample(rng))
    assert metrics(x, x) == {"param_mae": 0.0, "param_acc": 1.0, "route_f1": 1.0}
    y = x.copy()
    y[tiny_space.index["filter_1_cutoff"]] = 1.0 - x[tiny_space.index["filter_1_cutoff"]]
    continuous = int(metrics.continuous.sum())
    assert metrics(y, x)["param_mae"] == pytest.approx(abs(1 - 2 * x[tiny_space.index["filter_1_cutoff"]]) / continuous, abs=1e-6)
    # One of two routes right: F1 = 2 * 1 / (1 + 2).
    src, dst = tiny_space["mod_1_source"], tiny_space["mod_1_destination"]
    two = x.copy()
    for slot, (s, d) in enumerate([(1, 0), (2, 1)], start=1):
        two[tiny_space.index[f"mod_{slot}_source"]] = src.normalize(s)
        two[tiny_space.index[f"mod_{slot}_destination"]] = dst.normalize(d)
    one = two.copy()
    one[tiny_space.index["mod_2_source"]] = src.normalize(0)
    assert metrics(one, two)["route_f1"] == pytest.approx(2 / 3)


def test_mean_ci95_matches_students_t():
    mean, half = mean_ci95(np.array([1.0, 2.0, 3.0, np.nan]))
    assert mean == pytest.approx(2.0) and half == pytest.approx(4.303 * 1.0 / np.sqrt(3), rel=1e-3)
    assert np.isnan(mean_ci95(np.array([np.nan]))[0])


# ------------------------------------------------------------------ test sets
def test_synthetic_set_is_fixed_audible_and_held_out(tiny_space):
    config = tiny_config()
    a, b = synthetic_set(tiny_space, config, 3), synthetic_set(tiny_space, config, 3)
    assert [i.name for i in a] == ["synthetic-0000", "synthetic-0001", "synthetic-0002"]
    for x, y in zip(a, b):
        assert np.array_equal(x.params, y.params) and np.array_equal(x.audio, y.audio)
        assert x.midi_note in (48, 60, 72) and x.params is not None
        assert x.source == y.source and x.source in config.sources
        assert np.sqrt(np.mean(x.audio**2)) > 1e-4 and np.max(np.abs(x.audio)) <= 1.0
    training = synthetic_set(tiny_space, config, 3, seed=config.seed)
    assert not any(np.array_equal(x.params, t.params) for x in a for t in training)


def test_audio_set_skips_bad_files_by_name(tmp_path, tiny_render):
    write_wav(tmp_path / "hum.wav", tone(220.0, seconds=0.5), SR)
    write_wav(tmp_path / "silence.wav", np.zeros((1, 1000), np.float32), SR)
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    with pytest.warns(UserWarning) as caught:
        items = audio_set(tmp_path, tiny_render)
    assert [i.name for i in items] == ["hum"] and items[0].midi_note == 57
    assert items[0].audio.shape == (1, tiny_render.num_samples)
    text = " ".join(str(w.message) for w in caught)
    assert "broken.wav" in text and "silence.wav" in text
    with pytest.raises(FileNotFoundError, match="no .wav"):
        audio_set(tmp_path / "missing", tiny_render)


# ------------------------------------------------------------------ methods
def test_library_lookup_excludes_the_targets_own_preset_and_its_copies(preset_folder, tiny_render):
    from vital_gym.preset import Preset

    lookup = LibraryLookup(preset_folder, tiny_render)
    own = Preset.load(preset_folder / "p0.vital")
    audio = Renderer(tiny_render).render(own).audio
    # Without its own file excluded the lookup finds the target itself (distance 0) ...
    found = lookup.predict(TestItem("human", "x", audio, 60, tiny_render.velocity)).preset
    assert found.settings == own.settings
    # ... and with it excluded, neither the file nor its byte-identical copy is returned.
    item = TestItem("human", "p0", audio, 60, tiny_render.velocity, preset=own, path=preset_folder / "p0.vital")
    assert lookup.predict(item).preset.settings != own.settings


def test_nearest_neighbour_finds_a_training_sample_from_its_render(tmp_path, tiny_codec):
    config = tiny_config()
    generate(config, tmp_path / "ds", 6, workers=1, progress=False)
    nn = NearestNeighbour(tmp_path / "ds", tiny_codec, RenderConfig.from_dict(config.render))
    from agents.dataset.generate import SampleMaker

    maker = SampleMaker(config)
    for k in (0, 4):
        sample = maker.make(k, {"silent": 0, "non_finite": 0, "clipped": 0})
        x, _, note, velocity, _ = maker.draw(k, sample["attempts"] - 1)
        audio = maker.renderer.render(tiny_codec.to_preset(x), note, velocity).audio
        assert nn.nearest(audio) == k


def test_nearest_neighbour_on_fewer_samples_searches_only_the_first(tmp_path, tiny_codec):
    config = tiny_config()  # shards of 3
    generate(config, tmp_path / "ds", 9, workers=1, progress=False)
    render = RenderConfig.from_dict(config.render)
    full = NearestNeighbour(tmp_path / "ds", tiny_codec, render)
    first = NearestNeighbour(tmp_path / "ds", tiny_codec, render, max_samples=4)  # a shard and one sample
    assert len(first.params) == len(first.features) == 4 and first.description.startswith("the first 4 samples")
    np.testing.assert_array_equal(first.params, full.params[:4])
    with pytest.raises(ValueError, match="max_samples=0"):
        NearestNeighbour(tmp_path / "ds", tiny_codec, render, max_samples=0)


@pytest.mark.parametrize("method", ["nearest", "mean"])
@pytest.mark.parametrize("test_seed", [TEST_SEED, 31])  # the test set's, or a fresh set's (--synthetic-seed)
def test_dataset_baselines_refuse_a_dataset_made_with_the_synthetic_sets_seed(tmp_path, tiny_codec, method, test_seed):
    config = tiny_config(seed=test_seed)
    generate(config, tmp_path / "ds", 2, workers=1, progress=False)
    render = RenderConfig.from_dict(config.render)
    with pytest.raises(ValueError, match=f"test set's seed {test_seed}"):
        if method == "nearest":
            NearestNeighbour(tmp_path / "ds", tiny_codec, render, test_seed=test_seed)
        else:
            MeanPreset(tmp_path / "ds", tiny_codec, test_seed=test_seed)
    other_seed = 32 if test_seed == TEST_SEED else TEST_SEED  # the same dataset is fine for another set
    assert (
        NearestNeighbour(tmp_path / "ds", tiny_codec, render, test_seed=other_seed)
        if method == "nearest"
        else MeanPreset(tmp_path / "ds", tiny_codec, test_seed=other_seed)
    )


def test_mean_preset_is_the_mean_of_continuous_and_the_mode_of_discrete_parameters(tmp_path, tiny_space, tiny_codec):
    generate(tiny_config(), tmp_path / "ds", 9, workers=1, progress=False)
    params = load_all(tmp_path / "ds")["params"]
    mean = MeanPreset(tmp_path / "ds", tiny_codec)
    level, model = tiny_space.index["osc_1_level"], tiny_space.index["filter_1_model"]
    assert mean.x[level] == pytest.approx(params[:, level].mean(), abs=1e-5)
    n = tiny_space["filter_1_model"].n_values
    counts = np.bincount(np.round(params[:, model] * (n - 1)).astype(int), minlength=n)
    assert round(mean.x[model] * (n - 1)) == np.argmax(counts)
    assert np.array_equal(mean.x, tiny_codec.canonical(mean.x))  # a valid vector of the space
    item = TestItem("synthetic", "s0", np.zeros((1, 10), np.float32), 60, 0.7)
    assert mean.predict(item).preset.settings == tiny_codec.to_preset(mean.x).settings


def test_syntheon_failures_are_recorded_not_raised(tiny_render):
    # This interpreter has no syntheon package: the runner fails, and every item becomes a failure.
    # A relative path is kept relative to where the benchmark started, not to the runner's folder.
    method = Syntheon(os.path.relpath(sys.executable), SR, timeout_per_item=60)
    assert method.python.is_absolute() and method.python.is_file()
    items = [TestItem("voice", f"t{k}", tone(220.0), 57, 0.7) for k in range(2)]
    method.prepare(items)
    preds = [method.predict(i) for i in items]
    assert all(p.preset is None and "syntheon" in p.error for p in preds)
    with pytest.raises(FileNotFoundError, match="setup_syntheon.sh"):
        Syntheon(REPO / "no-such-venv" / "python", SR)


SYNTHEON_PYTHON = REPO / ".syntheon-venv" / "bin" / "python"


@pytest.mark.slow
@pytest.mark.skipif(not SYNTHEON_PYTHON.is_file(), reason="no .syntheon-venv (make it with scripts/setup_syntheon.sh)")
def test_syntheon_matches_a_tone_with_a_preset_vita_renders():
    method = Syntheon(SYNTHEON_PYTHON, SR)
    item = TestItem("voice", "hum", tone(220.0, seconds=2.0), 57, 0.7)
    method.prepare([item])
    pred = method.predict(item)
    assert pred.error is None and pred.seconds > 0
    assert Renderer().render(pred.preset, 57, 0.7).status.ok


# ------------------------------------------------------------------ the whole run
def quick_config(tmp_path, preset_folder, checkpoint, **changes) -> BenchmarkConfig:
    """The quick benchmark over the tiny space: two synthetic items, the preset folder, two tones."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    dataset_yaml = tmp_path / "tiny.yaml"
    dataset_yaml.write_text(yaml.safe_dump(tiny_config().to_dict()))
    generate(tiny_config(), tmp_path / "ds", 6, workers=1, progress=False)
    voices = tmp_path / "voices"
    voices.mkdir()
    for k, f in enumerate((196.0, 262.0)):
        write_wav(voices / f"v{k}.wav", tone(f, seconds=0.5), SR)
    return BenchmarkConfig.quick(
        dataset_config=str(dataset_yaml),
        n_synthetic=2,
        presets=str(preset_folder),
        audio=str(voices),
        dataset=str(tmp_path / "ds"),
        checkpoint=str(checkpoint),
        out=str(tmp_path / "docs"),
        command="vital-gym benchmark --quick",
        **changes,
    )


def test_quick_benchmark_writes_csv_report_and_plots(tmp_path, preset_folder, tiny_checkpoint):
    config = quick_config(tmp_path, preset_folder, tiny_checkpoint)
    results, report = run_benchmark(config, log=lambda *_: None)
    rows = list(csv.DictReader((tmp_path / "docs" / "benchmarks" / "items.csv").open()))
    counts = {s: len({r["item"] for r in rows if r["set"] == s}) for s in ("synthetic", "human", "voice")}
    assert counts == {"synthetic": 2, "human": 3, "voice": 2}
    assert {r["method"] for r in rows} == {"init", "random", "mean", "nearest", "nearest+refine", "library", "supervised", "supervised+refine"}
    assert len(rows) == 7 * 8 and all(r["ok"] == "1" for r in rows)
    # Refinement starts from the prediction and keeps the best exact render: never worse on the env's distance.
    by = {(r["item"], r["method"]): float(r["mrstft"]) for r in rows}
    for start in ("supervised", "nearest"):
        assert all(by[(i, f"{start}+refine")] <= by[(i, start)] + 1e-6 for i, m in by if m == start)
    assert all(r["param_mae"] for r in rows if r["set"] != "voice") and not any(r["param_mae"] for r in rows if r["set"] == "voice")
    text = report.read_text()
    assert "vital-gym benchmark --quick" in text and "## synthetic (2 items)" in text and "| library |" in text
    for name in ("synthetic", "human", "voice"):
        assert (tmp_path / "docs" / "img" / f"benchmark_{name}.png").stat().st_size > 1000
        assert f"img/benchmark_{name}_examples.png" in text


def test_the_benchmark_on_ray_gives_the_local_results_to_the_last_digit(ray_cluster, tmp_path, preset_folder, tiny_checkpoint):
    """Items spread over two nodes, each worker with its own history, against one local pass in order."""
    local = quick_config(tmp_path / "local", preset_folder, tiny_checkpoint, render_workers=1)
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torch and BLAS on one thread, as a Ray task computes: float sums then round alike
    try:
        with threadpool_limits(1):
            expected, _ = run_benchmark(local, log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)
    results, report = run_benchmark(replace(local, ray=True, out=str(tmp_path / "ray")), log=lambda *_: None)
    key = lambda r: (r.set, r.item, r.method)  # noqa: E731
    assert len(results) == len(expected) == 7 * 8 and all(r.ok for r in results)
    assert [(key(r), r.metrics) for r in sorted(results, key=key)] == [(key(r), r.metrics) for r in sorted(expected, key=key)]
    assert (tmp_path / "ray" / "img" / "benchmark_synthetic_examples.png").is_file() and report.is_file()


def test_keep_previous_replaces_the_rerun_methods_and_keeps_the_others(tmp_path, monkeypatch):
    dataset_yaml = tmp_path / "tiny.yaml"
    dataset_yaml.write_text(yaml.safe_dump(tiny_config().to_dict()))
    base = dict(dataset_config=str(dataset_yaml), sets=("synthetic",), out=str(tmp_path / "docs"))
    csv_path = tmp_path / "docs" / "benchmarks" / "items.csv"
    run_benchmark(BenchmarkConfig.quick(**base, n_synthetic=3, methods=("init", "random"), command="first"), log=lambda *_: None)
    first = {(r["item"], r["method"]): r for r in csv.DictReader(csv_path.open())}
    assert all(r["source"] in ("uniform", "pluck") for r in first.values())  # the tiny dataset's two sources
    # A file from before the source column: the merge gives the kept rows their items' sources back.
    old = [{k: v for k, v in r.items() if k != "source"} for r in first.values()]
    with csv_path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(old[0]))
        w.writeheader()
        w.writerows(old)
    runs_json = tmp_path / "docs" / "benchmarks" / "runs.json"
    recorded = json.loads(runs_json.read_text())
    assert recorded["examples"] == {"synthetic": [{"image": "img/benchmark_synthetic_examples.png", "methods": ["init", "random"], "command": "first"}]}
    _, report = run_benchmark(
        BenchmarkConfig.quick(**base, n_synthetic=3, methods=("random",), seed=1, keep_previous=True, command="second"), log=lambda *_: None
    )
    second = {(r["item"], r["method"]): r for r in csv.DictReader(csv_path.open())}
    assert set(second) == set(first)
    assert all(second[k] == first[k] for k in first if k[1] == "init")  # kept as they were
    assert any(second[k]["mrstft"] != first[k]["mrstft"] for k in first if k[1] == "random")  # re-run (another seed)
    text = report.read_text()
    assert "first\nsecond" in text and "| init |" in text and "| random |" in text
    # The first run's examples stay for init, captioned as stale for random; the second's sit beside them.
    both = ["img/benchmark_synthetic_examples.png", "img/benchmark_synthetic_examples_random.png"]
    assert [e["image"] for e in json.loads(runs_json.read_text())["examples"]["synthetic"]] == both
    assert all(f"]({img})" in text and (tmp_path / "docs" / img).is_file() for img in both)
    assert "Examples from `first`; random re-run since" in text and "Examples from `second`." in text
    # --report-only rebuilds the same report from the stored results, running no method, on any day.
    report.unlink()
    monkeypatch.setattr("agents.benchmark.run.machine_description", lambda: "another machine; 2099-01-01")
    assert cli(["benchmark", "--report-only", "--out", str(tmp_path / "docs")]) == 0
    assert report.read_text() == text
    # Once init is re-run too, the first image shows nothing current: it leaves the report and the disk.
    _, report = run_benchmark(BenchmarkConfig.quick(**base, n_synthetic=3, methods=("init",), keep_previous=True, command="third"), log=lambda *_: None)
    text = report.read_text()
    assert not (tmp_path / "docs" / both[0]).exists() and f"]({both[0]})" not in text
    assert "Examples from `second`." in text and "Examples from `third`." in text
    # Runs recorded before the record of methods: a bare image path, shown as it is, never dropped.
    entries = ["img/an_old_image.png", *json.loads(runs_json.read_text())["examples"]["synthetic"]]
    assert example_images(entries)[0] == ("img/an_old_image.png", "")
    # Earlier rows for items this run does not have: the sets changed, so the merge is refused.
    with pytest.raises(ValueError, match="synthetic-0002"):
        run_benchmark(BenchmarkConfig.quick(**base, n_synthetic=2, methods=("random",), keep_previous=True), log=lambda *_: None)


def test_a_fresh_synthetic_seed_draws_other_targets_and_is_never_merged_with_the_test_seeds(tmp_path):
    dataset_yaml = tmp_path / "tiny.yaml"
    dataset_yaml.write_text(yaml.safe_dump(tiny_config().to_dict()))
    base = dict(dataset_config=str(dataset_yaml), sets=("synthetic",), n_synthetic=2, methods=("init",))
    fresh, test = tmp_path / "fresh", tmp_path / "test"
    _, report = run_benchmark(BenchmarkConfig.quick(**base, synthetic_seed=31, out=str(fresh)), log=lambda *_: None)
    run_benchmark(BenchmarkConfig.quick(**base, out=str(test)), log=lambda *_: None)
    assert "## synthetic (2 items, drawn from seed 31, not the test seed)" in report.read_text()
    assert json.loads((fresh / "benchmarks" / "runs.json").read_text())["synthetic_seed"] == 31
    rows = {out: {r["item"]: r["mrstft"] for r in csv.DictReader((out / "benchmarks" / "items.csv").open())} for out in (fresh, test)}
    assert rows[fresh].keys() == rows[test].keys() and rows[fresh] != rows[test]  # the same names, other targets
    # --report-only keeps saying which seed; rows of another seed are never merged into a folder.
    report.unlink()
    assert cli(["benchmark", "--report-only", "--out", str(fresh)]) == 0 and "drawn from seed 31" in report.read_text()
    for out, seed in ((fresh, TEST_SEED), (test, 31)):
        with pytest.raises(ValueError, match="use another --out"):
            run_benchmark(BenchmarkConfig.quick(**base, synthetic_seed=seed, out=str(out), keep_previous=True), log=lambda *_: None)
    with pytest.raises(ValueError, match="training data's"):  # the dataset config's own seed: training samples
        run_benchmark(BenchmarkConfig.quick(**base, synthetic_seed=tiny_config().seed, out=str(tmp_path / "x")), log=lambda *_: None)


def test_report_splits_a_set_of_several_sources_by_source():
    def result(item, source, method, value):
        return Result("synthetic", item, method, True, "", 0.1, {"mrstft": value}, source)

    results = [result(f"i{k}", src, m, v + k) for k, src in enumerate(["pad", "pad", "uniform"]) for m, v in (("nearest", 1.0), ("supervised", 2.0))]
    results += [Result("voice", "v0", "nearest", True, "", 0.1, {"mrstft": 1.0})]  # no sources: no split
    by_source = summarise_by_source(results)
    assert list(by_source) == ["synthetic"] and list(by_source["synthetic"]["supervised"]) == ["pad (2)", "uniform (1)"]
    assert by_source["synthetic"]["supervised"]["pad (2)"][0] == pytest.approx(2.5)
    text = markdown_report(summarise(results), BenchmarkConfig.quick(), {}, {}, by_source=by_source)
    assert "| method | pad (2) | uniform (1) |" in text and "| supervised | 2.5 ± 6.4 | 4 |" in text
    assert text.count("by the items' source") == 1  # the voice set has no sources


def test_cli_rejects_unknown_methods_and_sets(tmp_path, capsys):
    assert cli(["benchmark", "--quick", "--methods", "init,oracle", "--out", str(tmp_path)]) == 2
    assert "oracle" in capsys.readouterr().err
    assert cli(["benchmark", "--quick", "--sets", "karaoke", "--methods", "init", "--out", str(tmp_path)]) == 2
    assert "karaoke" in capsys.readouterr().err
