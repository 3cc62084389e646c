"""vital-gym dataset select on the tiny space, labelled by the tiny trained checkpoint."""

import re

import numpy as np
import pytest
import yaml

from agents.cli import main as cli
from agents.dataset import Manifest, ShardDataset
from agents.supervised.train import train
from tests.agents.conftest import tiny_train_config
from tests.agents.test_dataset import load_all as rows
from tests.agents.test_dataset import tiny_config


@pytest.fixture(scope="module")
def dataset_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("select_config") / "tiny.yaml"
    path.write_text(yaml.safe_dump(tiny_config().to_dict()))
    return path


def select(config, checkpoint, out, *extra: str) -> list[str]:
    return ["--config", str(config), "--checkpoint", str(checkpoint), "--seed", "7", "--out", str(out), *extra]


def main(argv: list[str]) -> None:
    assert cli(["dataset", "select", "-q", *argv]) == 0


def refused(argv: list[str], capsys) -> str:
    """The error ``vital-gym dataset select`` gives for ``argv`` (exit status 2)."""
    assert cli(["dataset", "select", "-q", *argv]) == 2
    return capsys.readouterr().err


@pytest.fixture(scope="module")
def selected(dataset_config, tiny_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("selected")
    main(select(dataset_config, tiny_checkpoint, out, "--n", "4", "--shard-size", "2", "--draws", "1"))
    return out


def test_every_target_comes_twice_with_its_true_and_its_selected_label(selected):
    r = rows(selected)
    assert Manifest.load(selected).num_samples == 8 and len(r["params"]) == 8
    np.testing.assert_array_equal(r["index"], [0, 0, 1, 1, 2, 2, 3, 3])
    np.testing.assert_array_equal(r["label"], [0, 1] * 4)
    true, chosen = r["label"] == 0, r["label"] == 1
    np.testing.assert_array_equal(r["params"][true], r["true_params"][true])  # true rows: the truth
    np.testing.assert_array_equal(r["true_params"][true], r["true_params"][chosen])
    np.testing.assert_array_equal(r["logmel"][true], r["logmel"][chosen])  # the same sound, two labels
    assert (r["distance"][true] == 0).all() and np.isfinite(r["distance"][chosen]).all() and (r["distance"][chosen] > 0).all()
    assert ((r["params"] >= 0) & (r["params"] <= 1)).all()


@pytest.mark.parametrize("labels", [None, [1]])
def test_the_folder_trains_as_a_dataset(selected, tmp_path, labels):
    assert len(ShardDataset(selected, labels=labels)) == (8 if labels is None else 4)
    run = train(tiny_train_config(selected, tmp_path / "run", steps=2, batch_size=2, labels=labels), log=lambda *_: None)
    assert (run / "model.safetensors").is_file()


@pytest.mark.parametrize("labels", [[0], [1], [0, 1]])
def test_labels_keep_only_the_rows_so_labelled(selected, labels):
    r = rows(selected)
    for seed in (0, 1):  # whatever the shuffle
        seen = list(ShardDataset(selected, ("index", "label", "params"), seed=seed, labels=labels))
        assert len(seen) == len(ShardDataset(selected, labels=labels)) == 4 * len(labels)
        assert sorted((int(x["index"]), int(x["label"])) for x in seen) == sorted((i, label) for i, label in zip(r["index"], r["label"]) if label in labels)
        for x in seen:  # each row keeps its own label's parameters
            want = r["params"][(r["index"] == int(x["index"])) & (r["label"] == int(x["label"]))][0]
            np.testing.assert_array_equal(x["params"].numpy(), want)


@pytest.mark.parametrize("labels, problem", [([], "at least one"), ([2], "no row")])
def test_labels_that_keep_nothing_are_refused(selected, labels, problem):
    with pytest.raises(ValueError, match=problem):
        ShardDataset(selected, labels=labels)


def test_parts_side_by_side_then_a_plain_run_adopts_their_shards(dataset_config, tiny_checkpoint, tmp_path, capsys):
    args = select(dataset_config, tiny_checkpoint, tmp_path, "--n", "2", "--shard-size", "1", "--draws", "0")
    main([*args, "--part", "0/2"])
    main([*args, "--part", "1/2"])
    assert Manifest.load(tmp_path).shards == {}  # the parts leave the manifest alone
    capsys.readouterr()
    main(args)
    assert "shard-" not in capsys.readouterr().out.replace(f"{tmp_path}:", "")  # nothing made again
    assert sorted(Manifest.load(tmp_path).shards) == ["shard-00000.npz", "shard-00001.npz"]
    np.testing.assert_array_equal(rows(tmp_path)["index"], [0, 0, 1, 1])


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--seed", "3"], "the training data's seed"),
        (["--part", "2/2"], "--part 2/2"),
        (["--part", "half"], "--part half"),
        (["--n", "0"], "--n and --shard-size"),
        (["--sources", "uniform", "drums"], "--sources drums: not a source of .* \\(it has pluck, uniform\\)"),
    ],
)
def test_bad_arguments_are_refused_by_name(dataset_config, tiny_checkpoint, tmp_path, extra, message, capsys):
    assert re.search(message, refused([*select(dataset_config, tiny_checkpoint, tmp_path, "--n", "2"), *extra], capsys))


@pytest.mark.parametrize("extra", [["--n", "3"], ["--draws", "2"], ["--sources", "pluck"]])  # other targets, or labelled another way
def test_a_folder_of_other_settings_is_not_overwritten(selected, dataset_config, tiny_checkpoint, extra, capsys):
    before = Manifest.load(selected).shards
    assert "other settings" in refused(select(dataset_config, tiny_checkpoint, selected, "--n", "4", "--shard-size", "2", "--draws", "1", *extra), capsys)
    assert Manifest.load(selected).shards == before


def test_sources_draw_every_target_from_the_named_sources_only(dataset_config, tiny_checkpoint, tmp_path):
    main(select(dataset_config, tiny_checkpoint, tmp_path, "--n", "3", "--shard-size", "3", "--draws", "0", "--sources", "pluck"))
    sources = Manifest.load(tmp_path).config["sources"]
    assert list(sources) == ["pluck"] and sources["pluck"] == tiny_config().sources["pluck"]  # its priors kept
    assert (rows(tmp_path)["source"] == 0).all()  # indexes the manifest's sources: pluck


def test_a_model_of_another_space_is_refused(tiny_checkpoint, tmp_path, capsys):
    assert "is not the model's" in refused(select("core", tiny_checkpoint, tmp_path, "--n", "1"), capsys)
