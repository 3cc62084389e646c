import csv

import pytest

from agents.benchmark.compare import paired, read_scores
from agents.cli import main as cli

FIELDS = ["set", "item", "method", "ok", "error", "seconds", "mrstft"]


def write_items(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for set_name, item, method, ok, value in rows:
            w.writerow({"set": set_name, "item": item, "method": method, "ok": ok, "error": "", "seconds": 0.1, "mrstft": value})


@pytest.fixture
def two_runs(tmp_path):
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    write_items(a, [("s", f"i{k}", "ref", 1, 2.0 + k) for k in range(4)] + [("s", "i3", "m", 0, "")])
    write_items(b, [("s", f"i{k}", "m", 1, 1.5 + k + 0.1 * (k % 2)) for k in range(4)])
    return a, b


def test_paired_differences_across_files(two_runs, capsys):
    a, b = two_runs
    scores = read_scores({"a": a, "b": b}, "mrstft")
    assert set(scores) == {"a:ref", "b:m"} and len(scores["a:ref"]) == 4  # a failed item is left out
    d = paired(scores["b:m"], scores["a:ref"], "s")
    assert d.n == 4 and d.mean == pytest.approx(-0.45) and d.wins == 1.0 and 0 < d.half < 0.2
    assert cli(["compare", f"a={a}", f"b={b}", "--reference", "a:ref"]) == 0
    assert "b:m" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["a=missing.csv", "--reference", "a:ref"], ["nolabel", "--reference", "a:ref"]])
def test_bad_arguments_are_refused(argv, capsys):
    assert cli(["compare", *argv]) == 2
    assert argv[0] in capsys.readouterr().err


def test_an_unknown_reference_names_what_there_is(two_runs, capsys):
    a, _ = two_runs
    assert cli(["compare", f"a={a}", "--reference", "a:nearest"]) == 2
    assert "a:ref" in capsys.readouterr().err


def test_by_source_splits_each_set_by_its_items_source(tmp_path, capsys):
    path = tmp_path / "items.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["set", "item", "source", *FIELDS[2:]])
        w.writeheader()
        for k in range(6):
            source = "pad" if k < 3 else "uniform"
            for method, value in (("ref", 1.0 + k), ("m", 1.0 + k + (-0.5 if source == "pad" else 0.5) + 0.01 * k)):
                w.writerow({"set": "s", "item": f"i{k}", "source": source, "method": method, "ok": 1, "error": "", "seconds": 0.1, "mrstft": value})
    scores = read_scores({"a": path}, "mrstft", by_source=True)
    assert paired(scores["a:m"], scores["a:ref"], "s/pad").mean == pytest.approx(-0.49)
    assert paired(scores["a:m"], scores["a:ref"], "s/uniform").mean == pytest.approx(0.54)
    assert paired(read_scores({"a": path}, "mrstft")["a:m"], scores["a:ref"], "s").n == 0  # keys differ by design
    assert cli(["compare", f"a={path}", "--reference", "a:ref", "--by-source"]) == 0
    out = capsys.readouterr().out
    assert "s/pad" in out and "s/uniform" in out
