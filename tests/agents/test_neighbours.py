"""The model's training data as match candidates: indexed by the model's embedding, searched by sound."""

import warnings

import numpy as np
import pytest
import torch

from agents.cli import main as cli
from agents.dataset import generate
from agents.dataset.shards import Manifest, dequantise, read_shard
from agents.match import Matcher
from agents.neighbours import NEIGHBOURS_FILE, DatasetNeighbours, embed
from agents.supervised.checkpoint import load_model
from tests.agents.test_dataset import load_all, tiny_config
from tests.agents.test_match import SR
from vital_gym.audio import write_wav
from vital_gym.features import MelConfig
from vital_gym.params import ParameterSpace
from vital_gym.preset import Preset, init_preset
from vital_gym.render import RenderConfig, Renderer


def build(checkpoint, dataset, **kwargs) -> DatasetNeighbours:
    model, space, meta = load_model(checkpoint)
    return DatasetNeighbours.build(dataset, model, space, MelConfig.from_dict(meta["observation"]), **kwargs)


@pytest.fixture(scope="module")
def human_dataset(tmp_path_factory):
    """A tiny dataset that perturbs two human presets, and the folder they are in."""
    folder = tmp_path_factory.mktemp("human_presets")
    init_preset().with_values({"osc_1_transpose": -12.0}).save(folder / "low.vital")
    init_preset().with_values({"osc_1_transpose": 12.0}).save(folder / "high.vital")
    out = tmp_path_factory.mktemp("human_dataset")
    generate(tiny_config(sources={"human": {"weight": 1.0, "presets": str(folder), "jitter": 0.02}}), out, 9, workers=1, progress=False)
    return out, folder


def test_each_sample_is_its_own_nearest_neighbour_and_the_index_round_trips(tiny_checkpoint, tiny_dataset, tmp_path):
    index = build(tiny_checkpoint, tiny_dataset)
    data = load_all(tiny_dataset)
    assert len(index) == 12 and np.array_equal(index.samples, data["index"])
    np.testing.assert_allclose(index.params, data["params"], atol=1e-3)  # float16
    again = DatasetNeighbours.load(index.save(tmp_path / "n.npz"), index.space)
    assert np.array_equal(again.samples, index.samples) and torch.equal(again.embeddings, index.embeddings)
    assert again.seed == index.seed == tiny_config().seed
    model = load_model(tiny_checkpoint)[0].eval()
    with torch.no_grad():
        embeddings = embed(model, torch.from_numpy(dequantise(data["logmel"]))[:, None])
    for i in range(len(data["index"])):
        found = again.nearest(embeddings[i], int(data["midi_note"][i]), k=2)
        assert found[0].sample == data["index"][i] and len(found) == 2
        assert all(index.notes[list(index.samples).index(n.sample)] == data["midi_note"][i] for n in found)  # the target's note only
    assert len(build(tiny_checkpoint, tiny_dataset, max_samples=4)) == 4


def test_an_index_refuses_another_space_or_other_log_mels(tiny_checkpoint, tiny_dataset, tmp_path):
    model, space, meta = load_model(tiny_checkpoint)
    with pytest.raises(ValueError, match="other log-mels"):
        DatasetNeighbours.build(tiny_dataset, model, space, MelConfig(n_mels=64))
    with pytest.raises(ValueError, match="another parameter space"):
        DatasetNeighbours.build(tiny_dataset, model, ParameterSpace.load("core"), MelConfig.from_dict(meta["observation"]))
    path = build(tiny_checkpoint, tiny_dataset).save(tmp_path / "n.npz")
    with pytest.raises(ValueError, match="another parameter space"):
        DatasetNeighbours.load(path, ParameterSpace.load("core"))
    with pytest.raises(ValueError, match="max_samples=0"):
        DatasetNeighbours.build(tiny_dataset, model, space, MelConfig.from_dict(meta["observation"]), max_samples=0)


def test_a_sample_that_perturbs_a_human_preset_is_rendered_over_it(tiny_checkpoint, human_dataset, tmp_path):
    dataset, presets = human_dataset
    index = build(tiny_checkpoint, dataset)
    assert sorted(index.base_files) == sorted(str(p.resolve()) for p in presets.glob("*.vital"))
    manifest, shard = Manifest.load(dataset), read_shard(dataset / sorted(Manifest.load(dataset).shards)[0])
    render = RenderConfig.from_dict(manifest.config["render"])
    i = 0
    found = [n for n in index.nearest(index.embeddings[i], int(shard["midi_note"][i]), k=len(index)) if n.sample == shard["index"][i]][0]
    assert found.codec.base.settings["osc_1_transpose"] in (-12.0, 12.0)
    ours = Renderer(render).render(found.preset(), int(shard["midi_note"][i]), float(shard["velocity"][i])).audio
    theirs = Renderer(render).render(found.codec.to_preset(shard["params"][i]), int(shard["midi_note"][i]), float(shard["velocity"][i])).audio
    assert np.abs(ours - theirs).max() < 1e-2  # the same preset, up to the index's float16 parameters
    # a base preset that has gone: its samples are left out, named in a warning
    path = index.save(tmp_path / "n.npz")
    (presets / "high.vital").rename(tmp_path / "high.vital")
    try:
        with pytest.warns(UserWarning, match="high.vital"):
            fewer = DatasetNeighbours.load(path, index.space)
    finally:
        (tmp_path / "high.vital").rename(presets / "high.vital")
    assert 0 < len(fewer) < len(index) and all(fewer.base_files[b].endswith("low.vital") for b in fewer.bases)


def test_the_matcher_keeps_a_training_sample_that_is_closer_and_writes_it_as_it_sounds(tiny_checkpoint, tiny_dataset, tmp_path):
    import vita

    index = build(tiny_checkpoint, tiny_dataset)
    plain = Matcher(tiny_checkpoint, neighbours=False)
    matcher = Matcher(tiny_checkpoint, neighbours=index, neighbour_count=3)
    data = load_all(tiny_dataset)
    i = int(np.argmax(data["midi_note"] == 60))
    target = plain.renderer.render(plain.codec.to_preset(index.params[i].astype(np.float32)), 60).audio
    without, with_data = plain.match(target, 60, draws=0), matcher.match(target, 60, draws=0)
    assert with_data.neighbour == data["index"][i] and with_data.distance < 1e-3 < without.distance
    assert len(with_data.neighbour_distances) == 3 and "From the training data" in with_data.description
    assert "nearest training samples" in with_data.summary(given_note=True)
    assert with_data.candidate_distances == without.candidate_distances  # the model's candidates are as before
    paths = matcher.write(with_data, tmp_path / "out.vital")
    again = Renderer(matcher.render_config).render(Preset.load(paths[0]), 60, with_data.velocity)
    assert np.abs(again.audio - with_data.render).max() < 1e-5 and vita.Synth().load_preset(str(paths[0]))
    refined = matcher.match(target, 60, draws=0, refine_budget=4)
    assert refined.distance <= with_data.distance + 1e-9 and refined.neighbour == with_data.neighbour
    with pytest.raises(ValueError, match="neighbour_count=-1"):
        Matcher(tiny_checkpoint, neighbours=index, neighbour_count=-1)


def test_the_model_folders_index_is_loaded_and_the_command_line_builds_one(tiny_checkpoint, tiny_dataset, tmp_path, capsys):
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, model)
    assert cli(["checkpoint", "neighbours", str(model), "--dataset", str(tiny_dataset), "-q"]) == 0
    assert "12 samples" in capsys.readouterr().out and (model / NEIGHBOURS_FILE).is_file()
    assert len(Matcher(model).neighbours) == 12 and Matcher(model, neighbours=False).neighbours is None
    data = load_all(tiny_dataset)
    i = int(np.argmax(data["midi_note"] == 60))
    plain = Matcher(model, neighbours=False)
    write_wav(tmp_path / "t.wav", plain.renderer.render(plain.codec.to_preset(data["params"][i]), 60).audio, SR)
    argv = ["match", str(tmp_path / "t.wav"), "--checkpoint", str(model), "--draws", "0", "--note", "60", "--library-shortlist", "0", "-q"]
    assert cli([*argv, "-o", str(tmp_path / "a.vital")]) == 0
    assert "nearest training samples" in capsys.readouterr().out
    assert cli([*argv, "-o", str(tmp_path / "b.vital"), "--neighbours", "0"]) == 0
    assert "training samples" not in capsys.readouterr().out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli([*argv, "-o", str(tmp_path / "c.vital"), "--neighbours-index", str(tmp_path / "nope.npz")]) == 2
    assert "nope.npz" in capsys.readouterr().err and not (tmp_path / "c.vital").exists()


def test_the_benchmark_method_takes_the_model_folders_index(tiny_checkpoint, tiny_dataset, tiny_codec, tmp_path):
    import shutil

    from agents.benchmark.methods import Supervised
    from agents.benchmark.testsets import TestItem

    model = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, model)
    with pytest.raises(FileNotFoundError, match="no dataset index"):
        Supervised(model, tiny_codec, neighbours=True)
    build(model, tiny_dataset).save(model / NEIGHBOURS_FILE)
    method = Supervised(model, tiny_codec, neighbours=True)
    assert method.name == "supervised+neighbours" and "nearest the target by sound of the 12 of its dataset index" in method.description
    assert Supervised(model, tiny_codec).matcher.neighbours is None  # the model alone stays alone
    seed = tiny_config().seed  # an index of the synthetic test set's seed would hold its items
    with pytest.raises(ValueError, match=f"synthetic test set's seed {seed}"):
        Supervised(model, tiny_codec, neighbours=True, test_seed=seed)
    data = load_all(tiny_dataset)
    i = int(np.argmax(data["midi_note"] == 60))
    target = method.matcher.renderer.render(method.matcher.codec.to_preset(method.matcher.neighbours.params[i].astype(np.float32)), 60).audio
    predicted = method.predict(TestItem("synthetic", "s", target, 60, 0.7)).preset
    assert np.abs(method.matcher.renderer.render(predicted, 60, 0.7).audio - target).max() < 1e-3
