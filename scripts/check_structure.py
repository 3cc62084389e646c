"""How a checkpoint's hypotheses treat a preset's structure, by dataset source, on held-out samples.

Reads one shard of a training set (default: its second-to-last, which no stage of the shipped model trained
on) and prints, for each dataset source (uniform, pad, ...):

* switches: the share of samples whose best-scored hypothesis decodes each module's on/off switch right;
* rotations: the best of the K hypotheses' parameter loss (equal weights, switched-off modules not
  counted), slot by slot and with each sample's oscillators in whichever rotation fits
  (``ParameterLoss(rotations=...)``), and the share of hypotheses that a rotation fits better. A model that
  commits each slot to one oscillator gains much from the rotation; one that hedges, predicting the
  oscillators' average in every slot, gains little;
* told (switch-conditioned checkpoints only): the best hypothesis' continuous loss told nothing and told
  the true switches. Equal losses mean the decoder makes no use of being told.

    python scripts/check_structure.py                                    # the shipped model
    python scripts/check_structure.py --checkpoint runs/supervised_cpu_switches/last
    python scripts/check_structure.py --checkpoint DIR --shard shard-00099.npz --n 1000
"""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from agents.dataset.shards import Manifest, read_shard  # noqa: E402
from agents.supervised.checkpoint import load_model  # noqa: E402
from agents.supervised.losses import ParameterLoss  # noqa: E402
from agents.supervised.model import SoundMatcher  # noqa: E402

SHIPPED = Path(__file__).resolve().parents[1] / "agents" / "models" / "core_cpu"


def hypotheses(model: SoundMatcher, logmel: torch.Tensor, notes: torch.Tensor, switches: torch.Tensor | None, batch: int):
    """All hypotheses ``(N, K, action_dim)`` and scores ``(N, K)``, ``batch`` samples at a time."""
    zs, scores = [], []
    with torch.no_grad():
        for i in range(0, len(logmel), batch):
            told = None if switches is None else switches[i : i + batch]
            z, s = model.hypotheses(logmel[i : i + batch], notes[i : i + batch], told)
            zs.append(z)
            scores.append(s)
    return torch.cat(zs), torch.cat(scores)


def best_of(per_hypothesis: torch.Tensor, k: int) -> np.ndarray:
    """``(N * K,)`` values, hypothesis by hypothesis of each sample -> ``(N,)``: each sample's lowest."""
    return per_hypothesis.reshape(-1, k).min(1).values.numpy()


def main(argv: list[str] | None = None) -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=SHIPPED, help="model folder (default: the shipped model)")
    ap.add_argument("--dataset", type=Path, default=Path("data/core"), help="a generated dataset in the model's space")
    ap.add_argument("--shard", help="which shard (default: the second-to-last)")
    ap.add_argument("--n", type=int, default=384, help="samples read from the shard's start")
    ap.add_argument("--rotate", nargs="+", default=["osc_1", "osc_2", "osc_3"], help="modules that may rotate")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args(argv)
    if args.n < 1 or args.batch_size < 1:
        raise SystemExit(f"--n {args.n} and --batch-size {args.batch_size}: give at least 1")

    model, space, _ = load_model(args.checkpoint)
    model.eval()
    manifest = Manifest.load(args.dataset)
    if manifest.space_fingerprint != space.fingerprint:
        raise SystemExit(f"{args.dataset}: its parameter space is not the one {args.checkpoint} was trained on")
    shards = sorted(manifest.shards)
    shard = args.shard or shards[-2 if len(shards) > 1 else -1]
    if shard not in shards:
        raise SystemExit(f"{args.dataset}: no finished shard {shard!r} (it has {shards[0]} .. {shards[-1]})")
    data = read_shard(args.dataset / shard, ("logmel", "params", "midi_note", "source"))
    n = min(args.n, len(data["params"]))
    logmel = torch.from_numpy(data["logmel"][:n].astype(np.float32) / 255.0)[:, None]
    x = torch.from_numpy(data["params"][:n]).float()
    notes = torch.from_numpy(data["midi_note"][:n].astype(np.float32))
    sources = data["source"][:n]
    names = list(manifest.config.get("sources", {}))

    z, scores = hypotheses(model, logmel, notes, None, args.batch_size)
    decoder = model.decoder
    switch_names = [space.parameters[i].name for i in decoder.switch_params.tolist()]
    top = z[torch.arange(n), scores.argmax(1)]
    switch_right = (decoder.switches_of(top) == decoder.switch_values(x)).numpy()

    k, a = z.shape[1:]
    flat, xk = z.reshape(n * k, a), x.repeat_interleave(k, 0)  # every hypothesis beside its sample's target
    plain = ParameterLoss(space, ignore_switched_off=True)
    plain_terms = plain.per_sample(flat, xk)
    readings = {"best of K": best_of(plain_terms["total"], k)}
    try:
        rotated = ParameterLoss(space, ignore_switched_off=True, rotations=[args.rotate])
    except ValueError as e:
        print(f"rotations: not read ({e})")
    else:
        aligned = rotated.align(flat, xk)
        readings["rotated"] = best_of(rotated.per_sample(flat, aligned, align=False)["total"], k)
        readings["share rotated"] = (aligned != xk).any(1).reshape(n, k).float().mean(1).numpy()
    if model.switch_conditioned:
        told, _ = hypotheses(model, logmel, notes, decoder.switch_values(x), args.batch_size)
        readings["continuous"] = best_of(plain_terms["continuous"], k)
        readings["told"] = best_of(plain.per_sample(told.reshape(n * k, a), xk)["continuous"], k)

    print(f"{args.checkpoint}: {model.num_hypotheses} hypotheses; {n} samples of {args.dataset / shard}")
    print(f"{'source':10s} {'n':>4s}  " + " ".join(f"{s:>12s}" for s in readings) + "  switches right: " + " ".join(switch_names))
    groups = [(names[s] if s < len(names) else str(s), sources == s) for s in np.unique(sources)] + [("all", np.ones(n, bool))]
    for name, mask in groups:
        values = " ".join(f"{v[mask].mean():12.4f}" for v in readings.values())
        right = " ".join(f"{r:.2f}" for r in switch_right[mask].mean(0))
        print(f"{name:10s} {int(mask.sum()):4d}  {values}  {right}")


if __name__ == "__main__":
    main()
