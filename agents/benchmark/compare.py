"""Paired comparison of benchmark methods: per item, a method's distance minus a reference method's.

Two methods scored on the same items differ far less from item to item than their means do, so a paired
difference says which is better where the two confidence intervals of ``docs/benchmarks.md`` overlap.
Each CSV is ``vital-gym benchmark``'s ``items.csv``, given as ``LABEL=PATH``; methods are named
``LABEL:method``, so runs written to different folders (e.g. another refinement budget) compare too.

    vital-gym compare main=docs/benchmarks/items.csv --reference main:nearest
    vital-gym compare main=docs/benchmarks/items.csv r48=/tmp/bench_refine48/benchmarks/items.csv \\
        --reference main:nearest --metric mrstft

``--by-source`` splits each set by its items' source (the dataset source a synthetic item was drawn
from; the ``source`` column of files written since it was added):

    vital-gym compare main=docs/benchmarks/items.csv --reference main:nearest --by-source

Prints, per set and method: items in common, the mean paired difference (negative: better than the
reference, for lower-is-better metrics) ± the half-width of its 95% confidence interval (Student's t),
and the share of items where the method is strictly better.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path

import numpy as np

from agents.benchmark.metrics import PairedDifference


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


def paired(method: dict[tuple[str, str], float], reference: dict[tuple[str, str], float], set_name: str) -> PairedDifference:
    """``method - reference`` over the items of ``set_name`` that both scored (:class:`PairedDifference`)."""
    common = [k for k in method if k[0] == set_name and k in reference]
    return PairedDifference.of(np.array([method[k] for k in common]), np.array([reference[k] for k in common]))


def compare(sources: dict[str, Path], reference: str, metric: str = "mrstft", by_source: bool = False) -> str:
    """The report ``vital-gym compare`` prints: per set, every method of the ``items.csv`` files ``sources``
    (``{label: path}``) against ``reference`` (``LABEL:method``), paired over their common items."""
    scores = read_scores(sources, metric, by_source)
    if reference not in scores:
        raise ValueError(f"no method '{reference}' in the files; they hold {sorted(scores)}")
    lines = [f"{metric}: method minus {reference}, paired over the items both scored (95% CI; wins: share of items strictly lower)"]
    for set_name in sorted({s for s, _ in scores[reference]}):
        for name in sorted(scores):
            if name == reference:
                continue
            d = paired(scores[name], scores[reference], set_name)
            if d.n:
                lines.append(f"  {set_name:10s} {name:32s} n={d.n:4d}  {d.mean:+.3f} ± {d.half:.3f}  wins {d.wins:.2f}")
    return "\n".join(lines)
