import json

import numpy as np
import pytest
import torch
import yaml

from agents.cli import main
from agents.supervised.losses import ParameterLoss
from agents.supervised.sensitivity import Sensitivity, measure_sensitivity, perturb
from agents.supervised.train import train
from tests.agents.conftest import tiny_train_config
from tests.agents.test_dataset import tiny_config
from tests.agents.test_supervised import ideal_logits
from vital_gym.params import Kind


@pytest.fixture(scope="module")
def measured(tmp_path_factory) -> Sensitivity:
    """The tiny space measured on two presets: one short render per parameter and preset."""
    return measure_sensitivity(tiny_config(), presets=2, step=0.2, seed=5)


@pytest.mark.parametrize("name", ["osc_1_on", "osc_1_level", "osc_1_transpose", "filter_1_model", "lfo_1_shape"])
def test_perturb_moves_exactly_one_parameter_to_another_valid_value(tiny_space, tiny_codec, rng, name):
    i, p = tiny_space.index[name], tiny_space[name]
    for _ in range(20):
        x = tiny_codec.canonical(tiny_space.sample(rng))
        y = tiny_codec.canonical(perturb(tiny_space, x, i, 0.2, rng))
        others = np.arange(len(x)) != i
        assert np.array_equal(y[others], x[others])
        assert 0.0 <= y[i] <= 1.0
        if p.kind in (Kind.TOGGLE, Kind.CATEGORICAL):
            assert y[i] != x[i]  # always another option
        elif p.kind is Kind.CONTINUOUS:
            assert abs(y[i] - x[i]) == pytest.approx(0.2, abs=1e-6) or x[i] < 0.2 or x[i] > 0.8  # reflected near an end


def test_measurement_is_reproducible_and_finds_the_audible_parameters(measured, tiny_space):
    assert set(measured.values) == {p.name for p in tiny_space.parameters}
    assert all(np.isfinite(v) and v >= 0 for v in measured.values.values())
    # The tiny space's oscillator is always on: switching it off, or moving its pitch, changes the sound.
    assert measured.values["osc_1_on"] > 0 and measured.values["osc_1_transpose"] > 0
    again = measure_sensitivity(tiny_config(), presets=2, step=0.2, seed=5)
    assert again.values == measured.values  # renders are deterministic, draws seeded


def test_save_load_and_refusals(tmp_path, measured, tiny_space, core_space):
    path = measured.save(tmp_path / "sens" / "tiny.json")
    assert Sensitivity.load(path, tiny_space) == measured
    with pytest.raises(ValueError, match="measured on space 'tiny'"):
        Sensitivity.load(path, core_space)
    with pytest.raises(FileNotFoundError, match="vital-gym sensitivity"):
        Sensitivity.load(tmp_path / "missing.json", tiny_space)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not a sensitivity file"):
        Sensitivity.load(bad, tiny_space)


def test_loss_weights_have_mean_one_per_kind_and_a_floor(measured, tiny_space):
    w = measured.loss_weights(tiny_space, floor=0.25)
    kinds = np.array(["c" if p.kind in (Kind.CONTINUOUS, Kind.INTEGER) else p.kind.value for p in tiny_space.parameters])
    raw = np.array([measured.values[p.name] for p in tiny_space.parameters])
    for k in set(kinds):
        wk, rk = w[kinds == k], raw[kinds == k]
        assert wk.mean() == pytest.approx(1.0, abs=1e-5)
        # The least audible parameter keeps at least `floor` of the weight the raw figures would give it
        # against the most audible one.
        assert wk.min() / wk.max() >= 0.25 / max(rk.max() / rk.mean(), 0.25) - 1e-6
    cont = kinds == "c"
    louder, quieter = np.argmax(np.where(cont, raw, -1)), np.argmin(np.where(cont, raw, np.inf))
    assert w[louder] >= w[quieter]


def test_a_higher_power_spreads_the_weights(measured, tiny_space):
    cont = np.array([p.kind in (Kind.CONTINUOUS, Kind.INTEGER) for p in tiny_space.parameters])
    one, two = (measured.loss_weights(tiny_space, floor=0.0, power=k)[cont] for k in (1.0, 2.0))
    assert two.mean() == pytest.approx(1.0, abs=1e-5)
    assert np.array_equal(np.argsort(one, kind="stable"), np.argsort(two, kind="stable"))  # same order ...
    assert two.max() / max(two.min(), 1e-9) >= one.max() / max(one.min(), 1e-9)  # ... further apart
    with pytest.raises(ValueError, match="power must be > 0"):
        measured.loss_weights(tiny_space, power=0.0)


def test_weighted_loss_counts_only_the_weighted_parameters(tiny_space, tiny_codec, rng):
    x = tiny_codec.canonical(tiny_space.sample(rng))
    z = ideal_logits(tiny_space, x)[None]
    wrong = z.clone()
    level = tiny_space.layout[tiny_space.index["osc_1_level"]].start
    wrong[0, level] = -wrong[0, level] + (3.0 if x[tiny_space.index["osc_1_level"]] < 0.5 else -3.0)  # far off
    target = torch.from_numpy(x)[None]
    only_cutoff = np.zeros(len(tiny_space.parameters), dtype=np.float32)
    only_cutoff[tiny_space.index["filter_1_cutoff"]] = 1.0
    only_level = np.zeros_like(only_cutoff)
    only_level[tiny_space.index["osc_1_level"]] = 1.0
    assert float(ParameterLoss(tiny_space, parameter_weights=only_cutoff)(wrong, target)["continuous"]) < 1e-3
    weighted = float(ParameterLoss(tiny_space, parameter_weights=only_level)(wrong, target)["continuous"])
    plain = float(ParameterLoss(tiny_space)(wrong, target)["continuous"])
    assert weighted > 2 * plain  # the same error, concentrated in one weight of mean 1
    with pytest.raises(ValueError, match="parameter_weights must be"):
        ParameterLoss(tiny_space, parameter_weights=np.ones(3))


def test_cli_measures_and_training_uses_the_file(tmp_path, tiny_dataset, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config().to_dict()))
    out = tmp_path / "sens.json"
    assert main(["sensitivity", "--config", str(config), "--n", "1", "--out", str(out), "--quiet"]) == 0
    assert "most sensitive" in capsys.readouterr().out
    assert set(json.loads(out.read_text())["values"]) >= {"osc_1_level", "env_1_attack"}
    best = train(tiny_train_config(tiny_dataset, tmp_path / "run", steps=2, sensitivity=str(out)), log=lambda *_: None)
    saved = json.loads((best / "config.json").read_text())
    assert saved["train_config"]["sensitivity"] == str(out)
    assert main(["sensitivity", "--config", str(config), "--n", "0", "--out", str(tmp_path / "x.json")]) == 2
    assert "presets >= 1" in capsys.readouterr().err


def test_audible_shares_are_recorded_and_redrawn_the_same(measured, tiny_space):
    from dataclasses import replace

    from agents.supervised.sensitivity import with_audible_shares

    assert set(measured.audible) == {p.name for p in tiny_space.parameters}
    assert all(0.0 <= s <= 1.0 for s in measured.audible.values())
    assert measured.audible["osc_1_level"] == 1.0  # the tiny space's oscillator is always on
    assert measured.audible["osc_1_on"] == 1.0  # a switch always counts
    assert with_audible_shares(replace(measured, audible=None), tiny_config()) == measured


def test_given_audible_weighs_a_parameter_by_its_sensitivity_where_its_module_is_on(measured, tiny_space):
    from dataclasses import replace

    cont = [p.name for p in tiny_space.parameters if p.kind in (Kind.CONTINUOUS, Kind.INTEGER)]
    rare, common = cont[0], cont[1]
    flat = replace(measured, values=dict.fromkeys(measured.values, 1.0), audible=dict.fromkeys(measured.values, 1.0) | {rare: 0.5})
    plain, given = flat.loss_weights(tiny_space, floor=0.0), flat.loss_weights(tiny_space, floor=0.0, given_audible=True)
    i, j = tiny_space.index[rare], tiny_space.index[common]
    assert plain[i] == pytest.approx(plain[j])  # the same mean effect ...
    assert given[i] == pytest.approx(2.0 * given[j])  # ... but heard in half of the presets
    with pytest.raises(ValueError, match="--audible-only"):
        replace(measured, audible=None).loss_weights(tiny_space, given_audible=True)


def test_cli_adds_audible_shares_to_an_older_file(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(tiny_config().to_dict()))
    out = tmp_path / "sens.json"
    assert main(["sensitivity", "--config", str(config), "--n", "1", "--out", str(out), "--quiet"]) == 0
    measured = json.loads(out.read_text())
    out.write_text(json.dumps({k: v for k, v in measured.items() if k != "audible"}))  # as files before the shares
    assert main(["sensitivity", "--config", str(config), "--audible-only", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == measured and "audible shares added" in capsys.readouterr().out
