"""scripts/check_structure.py on a few core-space samples and random models of the real architecture."""

import pytest
import torch

from agents.dataset import generate
from agents.supervised.checkpoint import save_checkpoint
from agents.supervised.model import ModelConfig, SoundMatcher
from scripts.check_structure import main
from tests.agents.conftest import TINY_MODEL, tiny_dataset  # noqa: F401 - fixture
from tests.agents.test_dataset import tiny_config
from vital_gym.params import ParameterSpace


@pytest.fixture(scope="module")
def core_data(tmp_path_factory):
    """8 samples of the core space (the oscillators rotate there), short renders, two sources."""
    folder = tmp_path_factory.mktemp("core_data")
    generate(tiny_config(space="core", shard_size=4), folder, 8, workers=1, progress=False)
    return folder


def core_checkpoint(folder, switch_conditioning: bool = False):
    torch.manual_seed(0)
    decoder = {**TINY_MODEL["decoder"], "hypotheses": 3, "switch_conditioning": switch_conditioning}
    model = SoundMatcher(ParameterSpace.load("core"), ModelConfig.from_dict({**TINY_MODEL, "decoder": decoder}))
    if switch_conditioning:  # a trained map: being told the switches changes the other outputs
        torch.nn.init.normal_(model.decoder.switch_proj.weight)
    return save_checkpoint(folder / "model", model, "core")


def table(out: str) -> dict[str, dict[str, float]]:
    """The printed table: {source: {column: value}}."""
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("source"))
    columns = lines[header].split("switches right:")[0].replace("best of K", "best_of_K").replace("share rotated", "share_rotated")
    names = columns.split()[2:]
    rows = {}
    for line in lines[header + 1 :]:
        cells = line.split()
        rows[cells[0]] = dict(zip(names, map(float, cells[2 : 2 + len(names)])))
    return rows


def test_every_source_is_read_and_a_rotation_never_fits_worse(core_data, tmp_path, capsys):
    main(["--checkpoint", str(core_checkpoint(tmp_path)), "--dataset", str(core_data), "--n", "4"])
    out = capsys.readouterr().out
    rows = table(out)
    assert "all" in rows and set(rows) - {"all"} <= {"uniform", "pluck"}
    for row in rows.values():
        assert set(row) == {"best_of_K", "rotated", "share_rotated"}  # a plain model is not read told
        assert row["rotated"] <= row["best_of_K"] + 1e-6  # the identity is one of the rotations
        assert 0.0 <= row["share_rotated"] <= 1.0
    assert "4 samples of" in out and "shard-00000.npz" in out  # the second-to-last of two shards
    assert "osc_1_on" in out and "filter_2_on" in out


def test_a_switch_conditioned_model_is_also_read_told_its_switches(core_data, tmp_path, capsys):
    main(["--checkpoint", str(core_checkpoint(tmp_path, switch_conditioning=True)), "--dataset", str(core_data)])
    row = table(capsys.readouterr().out)["all"]
    assert {"continuous", "told"} <= set(row)
    assert row["told"] != row["continuous"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--shard", "shard-00009.npz"], "no finished shard 'shard-00009.npz'"),
        (["--n", "0"], "--n 0 and --batch-size 64: give at least 1"),
        (["--rotate", "osc_1", "filter_1"], None),  # rotations not read, the rest is
    ],
)
def test_bad_arguments_are_refused_and_bad_rotation_groups_are_skipped(core_data, tmp_path, capsys, args, message):
    checkpoint = core_checkpoint(tmp_path)
    if message:
        with pytest.raises(SystemExit, match=message):
            main(["--checkpoint", str(checkpoint), "--dataset", str(core_data), *args])
        return
    main(["--checkpoint", str(checkpoint), "--dataset", str(core_data), *args])
    out = capsys.readouterr().out
    assert out.startswith("rotations: not read")
    assert set(table(out)["all"]) == {"best_of_K"}


def test_a_dataset_of_another_space_is_refused(tiny_dataset, tmp_path):
    with pytest.raises(SystemExit, match="not the one"):
        main(["--checkpoint", str(core_checkpoint(tmp_path)), "--dataset", str(tiny_dataset)])
