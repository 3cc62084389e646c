"""Train a candidate critic (``agents/supervised/critic.py``) on rendered candidate pools.

    vital-gym critic data --n 800 --seed 11 -o data/critic_s11          # the pools (render-bound)
    vital-gym critic train --data data/critic_s11 data/critic_s12 -o runs/critic
    vital-gym critic train --data ... -o agents/models/core_cpu/critic   # ship it with its model
    tensorboard --logdir runs/critic
    vital-gym critic train --data data/critic_s13 --folds 3          # compare settings
    vital-gym critic train --data data/critic_s13 --evaluate agents/models/core_cpu/critic

Top to bottom: the pools are read and the frozen model embeds each target (its encoder's tokens averaged)
and scores its hypotheses; a held-out share of the targets (``val_fraction``) is set aside; the critic's
feature standardisation is fitted on the rest and it is trained with a listwise loss (each target's
candidates ranked against their rendered distances). Validation asks what the matcher will do with it: of
each held-out target's pool, render the ``K * (1 + draws)`` candidates the critic ranks first and keep the
closest, against the matcher's choice without a critic (the hypotheses and the first ``draws`` rounds of
draws), paired by target. The critic is written with those figures in its ``critic.json``.

``--folds N`` trains N critics instead, each holding out every N-th target, and reports every target's
held-out figure (nothing is saved): how settings are compared. ``--evaluate CRITIC`` runs a trained critic on
pools it never saw (another seed's). ``--items F.csv`` (any mode) also writes each held-out target's figures as
a benchmark ``items.csv``, a target named by its seed and index, so two critics, or a critic and
cross-validated settings, are paired target by target:

    vital-gym critic train --data data/critic_s13 --evaluate agents/models/core_cpu/critic --items shipped.csv
    vital-gym critic train --data data/critic_s13 --folds 3 --items cv.csv
    vital-gym compare shipped=shipped.csv cv=cv.csv --reference shipped:critic --metric distance
"""

from __future__ import annotations

import argparse
import csv
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from agents.benchmark.metrics import PairedDifference
from agents.dataset.generate import DatasetConfig
from agents.dataset.shards import dequantise
from agents.match import DEFAULT_DRAWS
from agents.supervised.checkpoint import load_model
from agents.supervised.critic import (
    CandidateCritic,
    CriticConfig,
    best_of,
    listwise_loss,
    load_critic,
    load_critic_data,
    save_critic,
    select,
)


@dataclass
class CriticTrainConfig:
    data: list[str] = field(default_factory=list)  # folders made by `vital-gym critic data`
    out: str = "runs/critic"
    checkpoint: str | None = None  # the model; default: the one the pools were made with
    hidden: int = 256
    dropout: float = 0.2
    temperature: float = 0.1  # of the listwise loss's target distribution, in distance units
    steps: int = 3000
    batch_size: int = 32  # targets per step (each with its whole pool)
    lr: float = 1e-3
    weight_decay: float = 0.01
    val_fraction: float = 0.15
    draws: int = DEFAULT_DRAWS  # the matcher's draws per hypothesis: it renders K * (1 + draws) candidates
    log_every: int = 250
    seed: int = 0

    @classmethod
    def from_yaml(cls, path: str | Path) -> CriticTrainConfig:
        raw = yaml.safe_load(Path(path).read_text()) or {}
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"{path}: unknown fields {sorted(unknown)}")
        return cls(**raw)


@torch.no_grad()
def embed_targets(model, logmel: np.ndarray, note: np.ndarray, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Each target's pooled encoder tokens ``(N, E)`` and its hypothesis scores as probabilities, best first
    ``(N, K)`` (the order :meth:`agents.match.Matcher.candidates` puts the hypotheses in)."""
    embeddings, scores = [], []
    for i in range(0, len(logmel), batch):
        tokens = model.encoder(torch.from_numpy(dequantise(logmel[i : i + batch]))[:, None])
        _, score, _ = model.decoder.predictive(tokens, torch.from_numpy(note[i : i + batch]).float())
        embeddings.append(tokens.mean(1))
        scores.append(torch.softmax(score, -1).sort(-1, descending=True).values)
    return torch.cat(embeddings), torch.cat(scores)


def paired(a: np.ndarray, b: np.ndarray) -> str:
    return str(PairedDifference.of(a, b))


@dataclass
class Pools:
    """Rendered pools with what the frozen model makes of each target: the critic's inputs, held in memory."""

    distance: np.ndarray  # (N, C) every candidate's screening distance
    metas: list[dict]
    checkpoint: Path
    keep: int  # the matcher renders K * (1 + draws) of each pool
    embedding: torch.Tensor  # (N, E)
    scores: torch.Tensor  # (N, K)
    candidates: torch.Tensor  # (N, C, P)
    items: list[str]  # each target's name, "seed{S}-{index}": the same in any folder, so runs pair by target
    sources: list[str]  # each target's dataset source

    @classmethod
    def load(cls, data: list[str], checkpoint: str | None, draws: int, log=print) -> Pools:
        if not data:
            raise ValueError("no data: give the folders made by vital-gym critic data (--data DIR ...)")
        pools, metas = load_critic_data(data)
        checkpoint = Path(checkpoint or metas[0]["checkpoint"])
        model, space, _ = load_model(checkpoint)
        model.eval()
        k = model.num_hypotheses
        n, count, params = pools["x"].shape
        keep = k * (1 + draws)
        if metas[0]["hypotheses"] != k or count != k * (1 + metas[0]["draws"]) or params != len(space):
            raise ValueError(
                f"{data}: pools of {count} candidates of {params} parameters are not this model's "
                f"({k} hypotheses, {len(space)} parameters, {metas[0]['draws']} draws)"
            )
        if keep >= count:
            raise ValueError(f"draws={draws}: the matcher would render {keep} of the {count} candidates in a pool; nothing to choose")
        log(f"{n} targets, {count} candidates each; the matcher renders {keep}")
        embedding, scores = embed_targets(model, pools["logmel"], pools["note"])
        candidates = torch.from_numpy(pools["x"].astype(np.float32))
        items = [f"seed{s}-{i:05d}" for s, i in zip(pools["seed"], pools["index"])]
        names = {m["seed"]: source_names(m) for m in metas}
        sources = [names[s][i] if i < len(names[s]) else str(i) for s, i in zip(pools["seed"], pools["source"].astype(int))]
        return cls(pools["distance"], metas, checkpoint, keep, embedding, scores, candidates, items, sources)

    def features(self, critic: CandidateCritic) -> torch.Tensor:
        """Every candidate's unstandardised features ``(N, C, F)``: small enough to hold."""
        return critic.features(self.embedding, self.scores, self.candidates)

    def new_critic(self, config: CriticTrainConfig) -> CandidateCritic:
        return CandidateCritic(
            CriticConfig(self.embedding.shape[1], self.candidates.shape[-1], self.scores.shape[1], self.metas[0]["draws"], config.hidden, config.dropout)
        )

    def best_chosen(self, critic: CandidateCritic, features: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
        """For each of ``targets``, the closest of the ``keep`` candidates the critic ranks first ``(len(targets),)``;
        ``features`` unstandardised, as :meth:`features` gives them."""
        critic.eval()
        with torch.no_grad():
            chosen = select(critic.cost(critic.standardise(features[targets])), self.keep).numpy()
        return best_of(self.distance[targets.numpy()], chosen)

    def baselines(self, targets: torch.Tensor) -> dict[str, np.ndarray]:
        """Each of ``targets``' closest candidate without a critic (the first ``keep``) and in the whole pool."""
        rows = self.distance[targets.numpy()]
        return {"no_critic": rows[:, : self.keep].min(1), "closest_in_pool": rows.min(1)}

    def report(self, held_out: torch.Tensor, with_critic: np.ndarray, **extra: Any) -> dict[str, Any]:
        """The critic's figures on the ``held_out`` targets, paired with the matcher without one (the first ``keep`` candidates)."""
        baselines = self.baselines(held_out)
        without, oracle = baselines["no_critic"], baselines["closest_in_pool"]
        return {
            **extra,
            "renders": self.keep,
            "pool": self.distance.shape[1],
            "held_out_distance": {"without_critic": float(without.mean()), "with_critic": float(with_critic.mean()), "closest_in_pool": float(oracle.mean())},
            "with_minus_without": paired(with_critic, without),
        }

    def write_items(self, path: str | Path, targets: torch.Tensor, with_critic: np.ndarray, label: str = "pools") -> Path:
        """Each of ``targets``' figures as rows of a benchmark ``items.csv`` (column ``distance``): methods ``critic``,
        ``no_critic`` (the first ``keep`` candidates) and ``closest_in_pool``, so ``vital-gym compare
        ... --metric distance`` pairs two critics, or a critic and cross-validated settings, target by target."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        methods = {"critic": with_critic, **self.baselines(targets)}
        with open(path, "w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["set", "item", "source", "method", "ok", "distance"])
            for method, values in methods.items():
                for t, value in zip(targets.tolist(), values):
                    out.writerow([label, self.items[t], self.sources[t], method, 1, f"{value:.6f}"])
        return path


def source_names(meta: dict) -> list[str]:
    """The dataset sources of a folder of pools, in the order its ``source`` indices count them (none known: [])."""
    config = Path(meta.get("dataset_config", ""))
    return list(DatasetConfig.from_yaml(config).sources) if config.is_file() else []


def fit(critic: CandidateCritic, features: torch.Tensor, distance: torch.Tensor, train: torch.Tensor, config: CriticTrainConfig, on_step=None) -> None:
    """Fit the standardisation on ``train``'s unstandardised ``features`` and train the critic with the listwise
    loss, each batch standardised as it is drawn (no second copy of the features). ``on_step(step, loss)`` after
    every step."""
    critic.fit_standardisation(features[train])
    optimiser = torch.optim.AdamW(critic.parameters(), config.lr, weight_decay=config.weight_decay)
    for step in range(1, config.steps + 1):
        critic.train()
        batch = train[torch.randint(len(train), (config.batch_size,))]
        loss = listwise_loss(critic.cost(critic.standardise(features[batch])), distance[batch], config.temperature)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if on_step is not None:
            on_step(step, loss.item())
    critic.eval()


def train_critic(config: CriticTrainConfig, log=print, items: str | Path | None = None) -> Path:
    """Train and save a critic; ``items``: also write its held-out targets' figures there (:meth:`Pools.write_items`)."""
    torch.manual_seed(config.seed)
    pools = Pools.load(config.data, config.checkpoint, config.draws, log)
    n = len(pools.distance)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))
    n_val = max(1, int(round(config.val_fraction * n)))
    val, train = order[:n_val], order[n_val:]
    critic = pools.new_critic(config)
    features = pools.features(critic)

    from torch.utils.tensorboard import SummaryWriter

    out = Path(config.out)
    writer = SummaryWriter(str(out / "logs"))
    without = pools.baselines(val)["no_critic"]  # the matcher without a critic

    def on_step(step: int, loss: float) -> None:
        writer.add_scalar("train/loss", loss, step)
        if step % config.log_every == 0 or step == config.steps:
            with_critic = pools.best_chosen(critic, features, val)
            writer.add_scalar("val/distance_with_critic", with_critic.mean(), step)
            writer.add_scalar("val/gain", without.mean() - with_critic.mean(), step)
            log(f"step {step}: loss {loss:.3f}, held-out {with_critic.mean():.4f} with the critic, {without.mean():.4f} without")

    fit(critic, features, torch.from_numpy(pools.distance), train, config, on_step)
    writer.close()
    held_out = pools.best_chosen(critic, features, val)
    report = pools.report(val, held_out, targets={"train": len(train), "held_out": len(val)})
    if items is not None:
        pools.write_items(items, val, held_out)
    log(
        f"held-out targets ({len(val)}): with the critic minus without {report['with_minus_without']}; "
        f"the closest in the pool {report['held_out_distance']['closest_in_pool']:.4f}"
    )
    save_critic(out, critic, pools.checkpoint, {"training": asdict(config), "data": pools.metas, "validation": report})
    return out


def cross_validate(config: CriticTrainConfig, folds: int, log=print, items: str | Path | None = None) -> dict[str, Any]:
    """What a critic of these settings gains, every target held out once: ``folds`` critics, each trained on the
    other folds' targets (nothing is saved). Why: settings compared on one held-out share of a thousand targets
    differ by less than that share's noise. ``items``: also write every target's figures there."""
    if folds < 2:
        raise ValueError(f"folds={folds}: cross-validation needs at least 2")
    pools = Pools.load(config.data, config.checkpoint, config.draws, log)
    n = len(pools.distance)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))
    features = pools.features(pools.new_critic(config))
    with_critic = np.zeros(n)
    for fold in range(folds):
        torch.manual_seed(config.seed + fold)
        val = order[fold::folds]
        train = order[torch.isin(order, val, invert=True)]
        critic = pools.new_critic(config)
        fit(critic, features, torch.from_numpy(pools.distance), train, config)
        with_critic[val.numpy()] = pools.best_chosen(critic, features, val)
        log(f"fold {fold + 1}/{folds}: held-out {with_critic[val.numpy()].mean():.4f} with the critic")
    report = pools.report(torch.arange(n), with_critic, folds=folds, targets=n)
    if items is not None:
        pools.write_items(items, torch.arange(n), with_critic)
    log(f"{folds}-fold cross-validation over {n} targets: with the critic minus without {report['with_minus_without']}")
    return report


def evaluate_critic(folder: str | Path, config: CriticTrainConfig, log=print, items: str | Path | None = None) -> dict[str, Any]:
    """A trained critic on other pools (targets it never saw), as :func:`train_critic` validates it; ``items``:
    also write every target's figures there."""
    pools = Pools.load(config.data, config.checkpoint, config.draws, log)
    critic, _ = load_critic(folder, pools.checkpoint)
    targets = torch.arange(len(pools.distance))
    with_critic = pools.best_chosen(critic, pools.features(critic), targets)
    report = pools.report(targets, with_critic, critic=str(folder), targets=len(targets))
    if items is not None:
        pools.write_items(items, targets, with_critic)
    log(
        f"{folder} on {len(targets)} targets: with the critic minus without {report['with_minus_without']}; "
        f"the closest in the pool {report['held_out_distance']['closest_in_pool']:.4f}"
    )
    return report


def run(args: argparse.Namespace) -> int:
    """``vital-gym critic train`` (its flags: :func:`agents.cli.build_parser`)."""
    config = CriticTrainConfig.from_yaml(args.config) if args.config else CriticTrainConfig()
    overrides = {
        k: v for k, v in {"data": args.data, "out": args.out, "checkpoint": args.checkpoint, "steps": args.steps, "seed": args.seed}.items() if v is not None
    }
    config = CriticTrainConfig(**{**asdict(config), **overrides})
    items = Path(args.items) if args.items else None
    if args.folds is not None:
        if args.folds < 2:
            raise ValueError(f"--folds {args.folds}: cross-validation needs at least 2")
        cross_validate(config, args.folds, items=items)
    elif args.evaluate is not None:
        evaluate_critic(Path(args.evaluate), config, items=items)
    else:
        train_critic(config, items=items)
    return 0
