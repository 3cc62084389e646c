import csv

import pytest

from scripts.compare_methods import main, paired, read_scores

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
    n, mean, half, wins = paired(scores["b:m"], scores["a:ref"], "s")
    assert n == 4 and mean == pytest.approx(-0.45) and wins == 1.0 and 0 < half < 0.2
    assert main([f"a={a}", f"b={b}", "--reference", "a:ref"]) == 0
    assert "b:m" in capsys.readouterr().out


@pytest.mark.parametrize("argv", [["a=missing.csv", "--reference", "a:ref"], ["nolabel", "--reference", "a:ref"]])
def test_bad_arguments_are_refused(argv):
    with pytest.raises(SystemExit):
        main(argv)


def test_an_unknown_reference_names_what_there_is(two_runs, capsys):
    a, _ = two_runs
    with pytest.raises(SystemExit):
        main([f"a={a}", "--reference", "a:nearest"])
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
    assert paired(scores["a:m"], scores["a:ref"], "s/pad")[1] == pytest.approx(-0.49)
    assert paired(scores["a:m"], scores["a:ref"], "s/uniform")[1] == pytest.approx(0.54)
    assert paired(read_scores({"a": path}, "mrstft")["a:m"], scores["a:ref"], "s")[0] == 0  # keys differ by design
    assert main([f"a={path}", "--reference", "a:ref", "--by-source"]) == 0
    out = capsys.readouterr().out
    assert "s/pad" in out and "s/uniform" in out
