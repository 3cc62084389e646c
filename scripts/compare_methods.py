"""Paired comparison of benchmark methods: per item, a method's distance minus a reference method's.

Two methods scored on the same items differ far less from item to item than their means do, so a paired
difference says which is better where the two confidence intervals of ``docs/benchmarks.md`` overlap.
Each CSV is ``vital-gym benchmark``'s ``items.csv``, given as ``LABEL=PATH``; methods are named
``LABEL:method``, so runs written to different folders (e.g. another refinement budget) compare too.

    python scripts/compare_methods.py main=docs/benchmarks/items.csv --reference main:nearest
    python scripts/compare_methods.py main=docs/benchmarks/items.csv r48=/tmp/bench_refine48/benchmarks/items.csv \\
        --reference main:nearest --metric mrstft

``--by-source`` splits each set by its items' source (the dataset source a synthetic item was drawn
from; the ``source`` column of files written since it was added):

    python scripts/compare_methods.py main=docs/benchmarks/items.csv --reference main:nearest --by-source

Prints, per set and method: items in common, the mean paired difference (negative: better than the
reference, for lower-is-better metrics) ± the half-width of its 95% confidence interval (Student's t),
and the share of items where the method is strictly better.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats


def read_scores(sources: dict[str, Path], metric: str, by_source: bool = False) -> dict[str, dict[tuple[str, str], float]]:
    """``{"LABEL:method": {(set, item): value}}`` over the items each method did not fail on; ``by_source``:
    the set reads ``set/source`` for items with a source."""
    scores: dict[str, dict[tuple[str, str], float]] = defaultdict(dict)
    for label, path in sources.items():
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                if metric not in row:
                    raise ValueError(f"{path}: no column '{metric}'")
                if row["ok"] == "1" and row[metric] not in ("", "nan"):
                    set_name = f"{row['set']}/{row['source']}" if by_source and row.get("source") else row["set"]
                    scores[f"{label}:{row['method']}"][(set_name, row["item"])] = float(row[metric])
    return dict(scores)


def paired(method: dict[tuple[str, str], float], reference: dict[tuple[str, str], float], set_name: str) -> tuple[int, float, float, float]:
    """Items in common on ``set_name``, mean difference, its 95% CI half-width, share of strict wins."""
    common = [k for k in method if k[0] == set_name and k in reference]
    if len(common) < 2:
        return len(common), float("nan"), float("nan"), float("nan")
    d = np.array([method[k] - reference[k] for k in common])
    half = float(stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / np.sqrt(len(d)))
    return len(d), float(d.mean()), half, float(np.mean(d < 0))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("csv", nargs="+", help="LABEL=PATH of a benchmark items.csv")
    ap.add_argument("--reference", required=True, help="LABEL:method that every other method is compared with")
    ap.add_argument("--metric", default="mrstft")
    ap.add_argument("--by-source", action="store_true", help="split each set by its items' source")
    args = ap.parse_args(argv)
    sources = {}
    for spec in args.csv:
        label, sep, path = spec.partition("=")
        if not sep or not label or not Path(path).is_file():
            ap.error(f"'{spec}': give LABEL=PATH of an existing items.csv")
        sources[label] = Path(path)
    scores = read_scores(sources, args.metric, args.by_source)
    if args.reference not in scores:
        ap.error(f"no method '{args.reference}' in the files; they hold {sorted(scores)}")
    reference = scores[args.reference]
    sets = sorted({s for s, _ in reference})
    print(f"{args.metric}: method minus {args.reference}, paired over the items both scored (95% CI; wins: share of items strictly lower)")
    for set_name in sets:
        for name in sorted(scores):
            if name == args.reference:
                continue
            n, mean, half, wins = paired(scores[name], reference, set_name)
            if n:
                print(f"  {set_name:10s} {name:32s} n={n:4d}  {mean:+.3f} ± {half:.3f}  wins {wins:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
