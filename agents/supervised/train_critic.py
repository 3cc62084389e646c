"""Train a candidate critic (``agents/supervised/critic.py``) on rendered candidate pools.

    python scripts/critic_data.py --n 800 --seed 11 --out data/critic_s11          # the pools (render-bound)
    python -m agents.supervised.train_critic --data data/critic_s11 data/critic_s12 --out runs/critic
    python -m agents.supervised.train_critic --data ... --out agents/models/core_cpu/critic   # ship it with its model
    tensorboard --logdir runs/critic

Top to bottom: the pools are read and the frozen model embeds each target (its encoder's tokens averaged)
and scores its hypotheses; a held-out share of the targets (``val_fraction``) is set aside; the critic's
feature standardisation is fitted on the rest and it is trained with a listwise loss (each target's
candidates ranked against their rendered distances). Validation asks what the matcher will do with it: of
each held-out target's pool, render the ``K * (1 + draws)`` candidates the critic ranks first and keep the
closest, against the matcher's choice without a critic (the hypotheses and the first ``draws`` rounds of
draws), paired by target. The critic is written with those figures in its ``critic.json``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from agents.match import DEFAULT_DRAWS  # noqa: E402
from agents.supervised.checkpoint import load_model  # noqa: E402
from agents.supervised.critic import CandidateCritic, CriticConfig, best_of, listwise_loss, load_critic_data, save_critic, select  # noqa: E402


@dataclass
class CriticTrainConfig:
    data: list[str] = field(default_factory=list)  # folders of scripts/critic_data.py
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
    def from_yaml(cls, path: str | Path) -> "CriticTrainConfig":
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
        tokens = model.encoder(torch.from_numpy(logmel[i : i + batch] / 255.0).float()[:, None])
        _, score, _ = model.decoder.predictive(tokens, torch.from_numpy(note[i : i + batch]).float())
        embeddings.append(tokens.mean(1))
        scores.append(torch.softmax(score, -1).sort(-1, descending=True).values)
    return torch.cat(embeddings), torch.cat(scores)


def paired(a: np.ndarray, b: np.ndarray) -> str:
    diff = a - b
    return f"{diff.mean():+.4f} ± {1.96 * diff.std(ddof=1) / np.sqrt(len(diff)):.4f} (closer on {np.mean(diff < 0):.0%})"


def train_critic(config: CriticTrainConfig, log=print) -> Path:
    if not config.data:
        raise ValueError("no data: give the folders of scripts/critic_data.py (--data DIR ...)")
    torch.manual_seed(config.seed)
    pools, metas = load_critic_data(config.data)
    checkpoint = Path(config.checkpoint or metas[0]["checkpoint"])
    model, space, _ = load_model(checkpoint)
    model.eval()
    k = model.num_hypotheses
    n, count, params = pools["x"].shape
    keep = k * (1 + config.draws)
    if metas[0]["hypotheses"] != k or count != k * (1 + metas[0]["draws"]) or params != len(space):
        raise ValueError(f"{config.data}: pools of {count} candidates of {params} parameters are not this model's "
                         f"({k} hypotheses, {len(space)} parameters, {metas[0]['draws']} draws)")
    if keep >= count:
        raise ValueError(f"draws={config.draws}: the matcher would render {keep} of the {count} candidates in a pool; nothing to choose")
    log(f"{n} targets, {count} candidates each; the matcher renders {keep}")

    embedding, scores = embed_targets(model, pools["logmel"], pools["note"])
    candidates = torch.from_numpy(pools["x"].astype(np.float32))
    distance = torch.from_numpy(pools["distance"])
    order = torch.randperm(n, generator=torch.Generator().manual_seed(config.seed))
    n_val = max(1, int(round(config.val_fraction * n)))
    val, train = order[:n_val], order[n_val:]

    critic = CandidateCritic(CriticConfig(embedding.shape[1], params, k, metas[0]["draws"], config.hidden, config.dropout))
    features = critic.features(embedding, scores, candidates)  # (N, C, F): small enough to hold
    critic.fit_standardisation(features[train])
    features = critic.standardise(features)
    optimiser = torch.optim.AdamW(critic.parameters(), config.lr, weight_decay=config.weight_decay)

    from torch.utils.tensorboard import SummaryWriter

    out = Path(config.out)
    writer = SummaryWriter(str(out / "logs"))
    without = pools["distance"][val.numpy(), :keep].min(1)  # the matcher without a critic
    for step in range(1, config.steps + 1):
        batch = train[torch.randint(len(train), (config.batch_size,))]
        loss = listwise_loss(critic.cost(features[batch]), distance[batch], config.temperature)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        writer.add_scalar("train/loss", loss.item(), step)
        if step % config.log_every == 0 or step == config.steps:
            critic.eval()
            with torch.no_grad():
                chosen = select(critic.cost(features[val]), keep).numpy()
            critic.train()
            with_critic = best_of(pools["distance"][val.numpy()], chosen)
            writer.add_scalar("val/distance_with_critic", with_critic.mean(), step)
            writer.add_scalar("val/gain", without.mean() - with_critic.mean(), step)
            log(f"step {step}: loss {loss.item():.3f}, held-out {with_critic.mean():.4f} with the critic, {without.mean():.4f} without")
    writer.close()
    critic.eval()
    oracle = pools["distance"][val.numpy()].min(1)
    report = {
        "targets": {"train": len(train), "held_out": len(val)}, "renders": keep, "pool": count,
        "held_out_distance": {"without_critic": float(without.mean()), "with_critic": float(with_critic.mean()), "closest_in_pool": float(oracle.mean())},
        "with_minus_without": paired(with_critic, without),
    }
    log(f"held-out targets ({len(val)}): with the critic minus without {report['with_minus_without']}; the closest in the pool {oracle.mean():.4f}")
    save_critic(out, critic, checkpoint, {"training": asdict(config), "data": metas, "validation": report})
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, help="YAML of CriticTrainConfig fields; the flags below override it")
    ap.add_argument("--data", nargs="+")
    ap.add_argument("--out")
    ap.add_argument("--checkpoint")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--seed", type=int)
    args = ap.parse_args(argv)
    config = CriticTrainConfig.from_yaml(args.config) if args.config else CriticTrainConfig()
    overrides = {k: v for k, v in vars(args).items() if k != "config" and v is not None}
    config = CriticTrainConfig(**{**asdict(config), **overrides})
    train_critic(config)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
