"""The candidate critic: its data (vital-gym critic data), training, saving, and the matcher using it."""

import csv
import json
import shutil

import numpy as np
import pytest
import torch
import yaml

from agents.benchmark.methods import Supervised
from agents.benchmark.testsets import TEST_SEED
from agents.cli import main as cli
from agents.dataset.shards import quantise
from agents.match import Matcher
from agents.supervised.checkpoint import load_model
from agents.supervised.critic import (
    CandidateCritic,
    CriticConfig,
    CriticError,
    listwise_loss,
    load_critic,
    load_critic_data,
    save_critic,
    select,
)
from agents.supervised.train_critic import CriticTrainConfig, embed_targets, evaluate_critic, train_critic
from tests.agents.test_dataset import tiny_config
from tests.agents.test_match import hum
from vital_gym.audio import write_wav


def critic_data(argv: list[str]) -> int:
    return cli(["critic", "data", "-q", *argv])


def train_critic_cli(argv: list[str]) -> int:
    return cli(["critic", "train", *argv])


CONFIG = CriticConfig(embed_dim=6, num_params=5, hypotheses=2, pool_draws=3, hidden=8, dropout=0.0)


def inputs(batch: int = 3, count: int = 8, config: CriticConfig = CONFIG, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.softmax(torch.randn(batch, config.hypotheses, generator=g), -1).sort(-1, descending=True).values
    return torch.randn(batch, config.embed_dim, generator=g), scores, torch.rand(batch, count, config.num_params, generator=g)


def test_the_critic_costs_every_candidate_and_describes_it_against_its_hypothesis():
    critic = CandidateCritic(CONFIG)
    embedding, scores, candidates = inputs()
    assert critic(embedding, scores, candidates).shape == (3, 8)
    f = critic.features(embedding, scores, candidates)
    p = CONFIG.num_params
    # candidate 5 is a draw of hypothesis 1 (hypotheses 0, 1, then rounds of one draw each)
    torch.testing.assert_close(f[:, 5, 6 + p : 6 + 2 * p], candidates[:, 5] - candidates[:, 1])
    assert f[:, 5, -4:].tolist() == [[0.0, 1.0, float(scores[b, 1]), 0.0] for b in range(3)]
    assert f[:, 1, -1].tolist() == [1.0] * 3  # the hypothesis itself


@pytest.mark.parametrize(
    "shapes",
    [((3, 5), (3, 2), (3, 8, 5)), ((3, 6), (3, 3), (3, 8, 5)), ((3, 6), (3, 2), (3, 8, 4)), ((3, 6), (3, 2), (3, 1, 5))],
    ids=["embedding", "scores", "params", "fewer-than-K"],
)
def test_inputs_of_other_shapes_are_refused_with_the_shapes(shapes):
    args = [torch.zeros(s) for s in shapes]
    with pytest.raises(CriticError, match="expected"):
        CandidateCritic(CONFIG)(*args)


def test_the_listwise_loss_is_lower_when_the_costs_rank_as_the_distances_do():
    distance = torch.tensor([[0.5, 1.0, 2.0, 3.0]])
    assert listwise_loss(distance * 10, distance, 0.1) < listwise_loss(-distance * 10, distance, 0.1)
    assert select(torch.tensor([[3.0, 1.0, 2.0, 0.0]]), 2).tolist() == [[3, 1]]


@pytest.fixture(scope="module")
def pools(tiny_checkpoint, tmp_path_factory):
    """Rendered pools of the tiny model (one hypothesis, 3 draws: 4 candidates) for 6 targets, in two parts."""
    folder = tmp_path_factory.mktemp("critic_config")
    config = folder / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config().to_dict()))
    out = tmp_path_factory.mktemp("pools")
    for part in ("0/2", "1/2"):
        assert (
            critic_data(
                ["--checkpoint", str(tiny_checkpoint), "--config", str(config), "--seed", "7", "--n", "6", "--draws", "3", "--out", str(out), "--part", part]
            )
            == 0
        )
    return out, config


def test_pools_hold_every_candidate_and_its_distance(pools):
    data, metas = load_critic_data([pools[0]])
    assert sorted(data["index"].tolist()) == list(range(6))
    assert data["x"].shape == (6, 4, data["params"].shape[1]) and data["distance"].shape == (6, 4)
    assert np.isfinite(data["distance"]).all() and (data["distance"] > 0).all()
    assert metas[0]["draws"] == 3 and metas[0]["hypotheses"] == 1 and metas[0]["model_sha256"]
    assert (data["seed"] == 7).all() and metas[0]["targets"] == 6
    with pytest.raises(ValueError, match="more than one part or folder"):  # the same targets twice would leak into validation
        load_critic_data([pools[0], pools[0]])


def test_a_stopped_part_carries_on_and_other_settings_are_refused(pools, tiny_checkpoint, tmp_path, capsys):
    out, config = pools
    common = ["--checkpoint", str(tiny_checkpoint), "--config", str(config), "--seed", "7", "--draws", "3", "--out", str(tmp_path)]
    assert critic_data(common + ["--n", "2"]) == 0
    assert critic_data(common + ["--n", "3"]) == 2 and "other settings" in capsys.readouterr().err
    before = (tmp_path / "part-0-of-1.npz").read_bytes()
    assert critic_data(common + ["--n", "2"]) == 0  # nothing left to do
    assert (tmp_path / "part-0-of-1.npz").read_bytes() == before
    moved = shutil.copytree(tiny_checkpoint, tmp_path / "moved_model")  # the same weights elsewhere carry on
    assert critic_data([moved.as_posix() if a == str(tiny_checkpoint) else a for a in common] + ["--n", "2"]) == 0
    assert (tmp_path / "part-0-of-1.npz").read_bytes() == before
    other = shutil.copytree(tiny_checkpoint, tmp_path / "other_model")
    weights = other / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1] + bytes([weights.read_bytes()[-1] ^ 1]))
    assert critic_data([other.as_posix() if a == str(tiny_checkpoint) else a for a in common] + ["--n", "2"]) == 2
    assert "model_sha256" in capsys.readouterr().err
    assert critic_data(["--seed", str(TEST_SEED), "--n", "1", "--out", str(tmp_path / "x"), "--config", str(config)]) == 2
    assert "seed" in capsys.readouterr().err


def test_a_trained_critic_is_saved_with_its_model_and_used_by_the_matcher(pools, tiny_checkpoint, tmp_path):
    out = train_critic(
        CriticTrainConfig(data=[str(pools[0])], out=str(tmp_path / "critic"), steps=6, batch_size=2, draws=1, log_every=3, val_fraction=0.34),
        log=lambda *_: None,
    )
    meta = json.loads((out / "critic.json").read_text())
    assert meta["validation"]["targets"] == {"train": 4, "held_out": 2} and meta["validation"]["renders"] == 2
    critic, _ = load_critic(out, tiny_checkpoint)
    plain, judged = Matcher(tiny_checkpoint), Matcher(tiny_checkpoint, critic=out)
    data, _ = load_critic_data([pools[0]])
    target = judged.renderer.render(judged.codec.to_preset(data["params"][0]), int(data["note"][0]), float(data["velocity"][0])).audio
    tokens = plain.model.encoder(torch.from_numpy(quantise(plain.mel(target)) / 255.0).float()[None, None])
    reordered = 0
    for seed in range(8):
        chosen = judged.candidates(target, 60, draws=1, seed=seed)
        assert chosen.shape == plain.candidates(target, 60, draws=1, seed=seed).shape  # K * (1 + draws), as without
        # they are the lowest-cost candidates of the pool the plain matcher draws with pool_draws, lowest first
        pool = plain.candidates(target, 60, draws=critic.config.pool_draws, seed=seed)
        with torch.no_grad():
            best = critic(tokens.mean(1), torch.ones(1, 1), torch.from_numpy(pool).float()[None])[0].argsort()[:2].numpy()
        np.testing.assert_allclose(chosen, pool[best], atol=1e-6)
        reordered += best.tolist() != [0, 1]
    assert reordered  # the critic chose other candidates than the first ones at least once
    # the benchmark's supervised method takes it too; supervised-top renders nothing, so has no use for it
    assert Supervised(tiny_checkpoint, plain.codec, draws=1, critic=out).matcher.critic is not None
    assert Supervised(tiny_checkpoint, plain.codec, select=False, critic=out).matcher.critic is None
    # shipped in its model's folder, it is the matcher's default
    assert plain.critic is None
    model = tmp_path / "model"
    shutil.copytree(tiny_checkpoint, model)
    shutil.copytree(out, model / "critic")
    assert Matcher(model).critic is not None and Matcher(model, critic=False).critic is None
    np.testing.assert_array_equal(Matcher(model).candidates(target, 60, draws=1, seed=0), judged.candidates(target, 60, draws=1, seed=0))


def data_model(pools) -> str:
    """The model a folder of pools was made with."""
    return load_critic_data([pools[0]])[1][0]["checkpoint"]


def test_settings_are_cross_validated_and_a_trained_critic_evaluated_on_other_pools(pools, tmp_path, capsys):
    data, _ = load_critic_data([pools[0]])
    without = data["distance"][:, :2].min(1).mean()  # one hypothesis and one draw rendered
    common = ["--data", str(pools[0]), "--steps", "4", "--out", str(tmp_path / "critic")]
    config = tmp_path / "critic.yaml"
    config.write_text(yaml.safe_dump({"batch_size": 2, "draws": 1, "log_every": 2}))
    assert train_critic_cli(common + ["--config", str(config), "--folds", "3"]) == 0
    out = capsys.readouterr().out
    assert "3-fold cross-validation over 6 targets" in out and out.count("fold ") == 4
    assert not (tmp_path / "critic").exists()  # nothing saved
    assert train_critic_cli(common + ["--config", str(config), "--folds", "1"]) == 2
    assert "at least 2" in capsys.readouterr().err
    assert train_critic_cli(common + ["--config", str(config)]) == 0
    report = evaluate_critic(tmp_path / "critic", CriticTrainConfig(data=[str(pools[0])], draws=1), log=lambda *_: None)
    figures = report["held_out_distance"]
    assert report["targets"] == 6 and figures["without_critic"] == pytest.approx(without)
    # each target's closest of the two candidates the critic ranks first, as the matcher would render them
    critic, _ = load_critic(tmp_path / "critic", data_model(pools))
    embedding, scores = embed_targets(load_model(data_model(pools))[0].eval(), data["logmel"], data["note"])
    with torch.no_grad():
        chosen = select(critic(embedding, scores, torch.from_numpy(data["x"].astype(np.float32))), 2).numpy()
    assert figures["with_critic"] == pytest.approx(np.take_along_axis(data["distance"], chosen, 1).min(1).mean())
    # --items: each target's figures, paired by name with another run's (the same pools: the same names)
    for mode, args in (("evaluate", ["--evaluate", str(tmp_path / "critic")]), ("folds", ["--folds", "2"])):
        assert train_critic_cli(common + args + ["--config", str(config), "--items", str(tmp_path / mode / "items.csv")]) == 0
    with open(tmp_path / "evaluate" / "items.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 18 and {r["method"] for r in rows} == {"critic", "no_critic", "closest_in_pool"}
    by_method = {m: {r["item"]: float(r["distance"]) for r in rows if r["method"] == m} for m in ("critic", "no_critic", "closest_in_pool")}
    names = [f"seed7-{i:05d}" for i in data["index"]]
    assert sorted(by_method["critic"]) == sorted(names) and {r["source"] for r in rows} <= {"uniform", "pluck"}
    np.testing.assert_allclose([by_method["critic"][n] for n in names], np.take_along_axis(data["distance"], chosen, 1).min(1), atol=1e-5)
    np.testing.assert_allclose([by_method["no_critic"][n] for n in names], data["distance"][:, :2].min(1), atol=1e-5)
    assert (
        cli(
            [
                "compare",
                f"ev={tmp_path / 'evaluate' / 'items.csv'}",
                f"cv={tmp_path / 'folds' / 'items.csv'}",
                "--reference",
                "ev:critic",
                "--metric",
                "distance",
            ]
        )
        == 0
    )
    assert "cv:critic" in capsys.readouterr().out
    with pytest.raises(SystemExit):  # one or the other
        train_critic_cli(common + ["--folds", "2", "--evaluate", str(tmp_path / "critic")])
    capsys.readouterr()
    # no critic there, no pools, the same targets twice: the reason, no traceback
    assert train_critic_cli(common + ["--evaluate", str(tmp_path / "nothing")]) == 2
    assert "no critic here" in capsys.readouterr().err
    assert train_critic_cli(["--data", str(tmp_path / "no_pools"), "--folds", "2"]) == 2
    assert "critic_data.json" in capsys.readouterr().err
    assert train_critic_cli(["--data", str(pools[0]), str(pools[0]), "--folds", "2"]) == 2
    assert "more than one part or folder" in capsys.readouterr().err


def test_a_critic_of_another_model_is_refused(tiny_checkpoint, tmp_path, capsys):
    critic = CandidateCritic(CONFIG)
    other = tmp_path / "other_model"
    other.mkdir()
    (other / "model.safetensors").write_bytes(b"other weights")
    save_critic(tmp_path / "critic", critic, other)
    with pytest.raises(CriticError, match="SHA-256"):
        Matcher(tiny_checkpoint, critic=tmp_path / "critic")
    with pytest.raises(CriticError, match="no critic here"):
        Matcher(tiny_checkpoint, critic=tmp_path / "nothing")
    # on the command line: a clear error, nothing written; --no-critic matches without one
    write_wav(tmp_path / "t.wav", hum(), 44100)
    match = ["match", str(tmp_path / "t.wav"), "-o", str(tmp_path / "o.vital"), "--checkpoint", str(tiny_checkpoint), "--draws", "1"]
    assert cli(match + ["--critic", str(tmp_path / "critic")]) == 2
    assert "SHA-256" in capsys.readouterr().err and not (tmp_path / "o.vital").exists()
    assert cli(match + ["--critic", str(tmp_path / "critic"), "--no-critic"]) == 0 and (tmp_path / "o.vital").is_file()
