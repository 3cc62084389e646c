"""A critic that ranks a matcher's candidates before any of them is rendered.

Why. ``vital-gym match`` renders a fixed number of candidates (the K hypotheses and ``draws`` drawn presets
per hypothesis) and keeps the closest; the renders are its cost. Which draws are worth rendering is
something the renders themselves can teach: on 167 held-out training-like targets, the closest of 104
candidates (8 hypotheses and 12 draws of each) was 0.11 closer than the closest of the 24 the matcher
renders (1.044 against 1.150; ``train_critic`` prints both). The
critic is trained on such rendered pools (``vital-gym critic data``: every candidate's screening distance
to its target) to predict, from the target's encoder embedding and a candidate's parameters, which
candidates render closest; the matcher then draws the larger pool, and renders only the candidates the
critic ranks first: the same renders, chosen by what earlier renders taught. It learns from the real synth's
outcomes, where the decoder learned from one arbitrary preset per sound. Measured for the shipped model, it
gains about 0.02-0.04 in distance (README, "A critic of the candidates"); it ships with that model.

A critic belongs to one model: its inputs are that model's embedding and candidates. It lives in the
model's folder (``critic/``: ``critic.safetensors`` and ``critic.json``, which records the SHA-256 of the
model's weights), is loaded with it, and is refused with another model's weights.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from agents.dataset.shards import sha256

CRITIC_DIR, WEIGHTS_FILE, CONFIG_FILE = "critic", "critic.safetensors", "critic.json"
MODEL_WEIGHTS = "model.safetensors"  # the model file whose digest a critic records


class CriticError(ValueError):
    """A critic that cannot be used with this model (another model's, or unreadable)."""


@dataclass
class CriticConfig:
    embed_dim: int  # the model's encoder width (the target's pooled tokens)
    num_params: int  # the parameter space's size (each candidate's parameter vector)
    hypotheses: int  # the model's K
    pool_draws: int = 12  # draws per hypothesis the critic ranks (the pools it was trained on)
    hidden: int = 256
    dropout: float = 0.2

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CriticConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise CriticError(f"critic config: unknown fields {sorted(unknown)}")
        return cls(**d)


class CandidateCritic(nn.Module):
    """Predicted cost ``(B, C)`` of rendering each candidate: lower is predicted closer to the target.

    Inputs: the target's embedding ``(B, E)`` (the encoder's tokens averaged), the model's hypothesis
    scores ``(B, K)`` as probabilities in the candidates' hypothesis order (best-scored first), and the
    candidates' parameter vectors ``(B, C, P)`` laid out as :meth:`agents.match.Matcher.candidates`
    returns them: the K hypotheses, then rounds of one draw per hypothesis. Each candidate is described by
    its parameters, how far they are from its hypothesis', which hypothesis it comes from and that
    hypothesis' score, and whether it is the hypothesis itself; the features are standardised with the
    training set's mean and deviation (buffers, saved with the weights).
    """

    def __init__(self, config: CriticConfig):
        super().__init__()
        self.config = config
        width = config.embed_dim + 2 * config.num_params + config.hypotheses + 2
        self.register_buffer("mean", torch.zeros(width))
        self.register_buffer("std", torch.ones(width))
        self.net = nn.Sequential(
            nn.Linear(width, config.hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, config.hidden),
            nn.GELU(),
            nn.Dropout(config.dropout),
            nn.Linear(config.hidden, 1),
        )

    def features(self, embedding: torch.Tensor, scores: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """Unstandardised features ``(B, C, F)``."""
        batch, count, params = candidates.shape
        k = self.config.hypotheses
        if tuple(embedding.shape) != (batch, self.config.embed_dim) or tuple(scores.shape) != (batch, k) or params != self.config.num_params or count < k:
            raise CriticError(
                f"critic inputs of shapes {tuple(embedding.shape)}, {tuple(scores.shape)}, {tuple(candidates.shape)}: expected "
                f"({batch}, {self.config.embed_dim}), ({batch}, {k}) and ({batch}, C >= {k}, {self.config.num_params})"
            )
        hypothesis = torch.arange(count, device=candidates.device) % k
        return torch.cat(
            [
                embedding[:, None].expand(-1, count, -1),
                candidates,
                candidates - candidates[:, hypothesis],
                nn.functional.one_hot(hypothesis, k).to(candidates.dtype)[None].expand(batch, -1, -1),
                scores[:, hypothesis, None],
                (torch.arange(count, device=candidates.device) < k).to(candidates.dtype)[None, :, None].expand(batch, -1, -1),
            ],
            -1,
        )

    def fit_standardisation(self, features: torch.Tensor) -> None:
        flat = features.reshape(-1, features.shape[-1])
        self.mean.copy_(flat.mean(0))
        self.std.copy_(flat.std(0) + 1e-3)

    def standardise(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.mean) / self.std

    def forward(self, embedding: torch.Tensor, scores: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        return self.cost(self.standardise(self.features(embedding, scores, candidates)))

    def cost(self, standardised: torch.Tensor) -> torch.Tensor:
        """``(B, C, F)`` standardised features -> ``(B, C)`` costs."""
        return self.net(standardised).squeeze(-1)


def listwise_loss(cost: torch.Tensor, distance: torch.Tensor, temperature: float) -> torch.Tensor:
    """ListNet: cross-entropy from ``softmax(-distance / temperature)`` over each target's candidates ``(B, C)``
    to ``softmax(-cost)``; the closest candidates carry the loss, as only the first few are rendered."""
    return -(torch.softmax(-distance / temperature, 1) * torch.log_softmax(-cost, 1)).sum(1).mean()


def select(cost: torch.Tensor, keep: int) -> torch.Tensor:
    """Indices ``(B, keep)`` of each row's ``keep`` lowest costs, lowest first."""
    return cost.argsort(-1)[..., :keep]


def model_digest(model_folder: str | Path) -> str:
    return sha256(Path(model_folder) / MODEL_WEIGHTS)


def save_critic(folder: str | Path, critic: CandidateCritic, model_folder: str | Path, extra: dict[str, Any] | None = None) -> Path:
    """Write ``critic.safetensors`` and ``critic.json`` (config, the model's digest, ``extra``) into ``folder``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in critic.state_dict().items()}, str(folder / WEIGHTS_FILE))
    meta = {"critic": asdict(critic.config), "model_sha256": model_digest(model_folder), **(extra or {})}
    (folder / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
    return folder


def load_critic(folder: str | Path, model_folder: str | Path) -> tuple[CandidateCritic, dict[str, Any]]:
    """The critic in ``folder`` and its JSON, refused unless it was trained for the model in ``model_folder``."""
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / WEIGHTS_FILE).is_file() or not (folder / CONFIG_FILE).is_file():
        raise CriticError(f"{folder}: no critic here (expected {WEIGHTS_FILE} and {CONFIG_FILE})")
    try:
        meta = json.loads((folder / CONFIG_FILE).read_text())
        config = CriticConfig.from_dict(meta["critic"])
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CriticError(f"{folder / CONFIG_FILE}: not a critic config ({e})") from None
    digest = model_digest(model_folder)
    if meta.get("model_sha256") != digest:
        raise CriticError(
            f"{folder}: this critic ranks the candidates of the model whose weights have SHA-256 {meta.get('model_sha256')}, "
            f"not {model_folder}'s ({digest}); train one for this model (vital-gym critic train) or match without it"
        )
    critic = CandidateCritic(config)
    critic.load_state_dict(load_file(str(folder / WEIGHTS_FILE)))
    return critic.eval(), meta


# Rendered candidate pools (vital-gym critic data): a folder of parts and a JSON of how they were made.
META_FILE = "critic_data.json"
ARRAYS = ("index", "logmel", "note", "velocity", "source", "params", "x", "distance")


def part_path(out: Path, part: int, parts: int) -> Path:
    """Where process ``part`` of ``parts`` of ``vital-gym critic data`` writes its pools."""
    return out / f"part-{part}-of-{parts}.npz"


def load_critic_data(folders: list[str | Path]) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Every part of every folder, concatenated, with each target's ``seed`` (its folder's: a target is its
    seed and ``index``), and each folder's ``critic_data.json``; folders of other draws (pool sizes) or of
    another model are refused."""
    rows: dict[str, list[np.ndarray]] = {k: [] for k in (*ARRAYS, "seed")}
    metas = []
    for folder in map(Path, folders):
        if not (folder / META_FILE).is_file():
            raise FileNotFoundError(f"{folder}: no {META_FILE} here (make one with vital-gym critic data)")
        meta = json.loads((folder / META_FILE).read_text())
        if metas and (meta["draws"], meta["model_sha256"]) != (metas[0]["draws"], metas[0]["model_sha256"]):
            raise ValueError(
                f"{folder}: its pools ({meta['draws']} draws, model {meta['model_sha256'][:12]}) are not "
                f"{folders[0]}'s ({metas[0]['draws']} draws, model {metas[0]['model_sha256'][:12]})"
            )
        parts = sorted(folder.glob("part-*-of-*.npz"))
        if not parts:
            raise FileNotFoundError(f"{folder}: no part-*-of-*.npz files")
        made = 0  # targets in this folder (``n`` is how many were asked for; a run may stop early)
        for path in parts:
            with np.load(path) as part:
                for k in ARRAYS:
                    rows[k].append(part[k])
                rows["seed"].append(np.full(len(part["index"]), meta["seed"]))
                made += len(part["index"])
        metas.append({**meta, "targets": made})
    data = {k: np.concatenate(v) for k, v in rows.items()}
    targets = data["seed"] * (int(data["index"].max()) + 1) + data["index"]
    if len(np.unique(targets)) < len(targets):
        raise ValueError(
            f"{[str(f) for f in folders]}: some targets (seed and index) are in more than one part or folder; "
            "give each folder once, and folders of different seeds"
        )
    return data, metas


def best_of(distance: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Each target's smallest distance ``(N,)`` among its ``chosen`` candidates ``(N, keep)`` of ``distance`` ``(N, C)``."""
    return np.take_along_axis(distance, chosen, 1).min(1)
