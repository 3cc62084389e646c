"""Train the supervised sound matcher on a generated dataset.

    vital-gym train --config supervised_cpu --dataset data/core -o runs/sup
    vital-gym train ... --resume          # carry on from runs/sup/last
    vital-gym train ... --init-from agents/models/core_cpu   # fine-tune a trained model
    tensorboard --logdir runs/sup

One file, top to bottom: config, data, model, optimiser (AdamW, linear warm-up then cosine decay), the
loop, validation, checkpoints. The last shards of the dataset (``val_shards``) are held out. ``dataset``
may list several folders (``--dataset A B``), trained on as one: their samples interleaved in proportion
to their sizes (``InterleavedDatasets``), each folder's last shards held out, the first folder's validated
on. Validation
logs the held-out loss terms, per-group parameter error and categorical accuracy, and, on a fixed subset,
the spectral distance between Vita renders of the predicted and the true presets (same note and
velocity), with their audio and log-mel images. Every forward pass is given each sample's MIDI note,
which a note-conditioned decoder uses (``agents/supervised/model.py``). On a GPU the loop uses bfloat16 autocast and
``torch.compile``; on CPU it runs the same code in float32.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch.utils.data import DataLoader

from agents.dataset import InterleavedDatasets, Manifest, ShardDataset
from agents.dataset.augment import LogMelAugment
from agents.dataset.shards import dequantise, read_shard
from agents.match import candidate_renderers, render_closest
from agents.supervised.checkpoint import init_weights, load_optimizer_state, read_config, save_checkpoint
from agents.supervised.losses import HypothesisLoss, LossWeights, ParameterLoss
from agents.supervised.model import ModelConfig, SoundMatcher
from agents.supervised.sensitivity import Sensitivity
from vital_gym.features import MelConfig, spectrogram
from vital_gym.params import ParameterSpace
from vital_gym.preset import PresetCodec
from vital_gym.render import RenderConfig, Renderer, side_by_side
from vital_gym.resources import find_config


@dataclass
class TrainConfig:
    dataset: str | list[str] = "data/core"  # a folder, or several trained on as one (the first's held-out shards validate)
    out: str = "runs/supervised"
    model: dict[str, Any] = field(default_factory=dict)  # ModelConfig fields (encoder, decoder)
    loss: dict[str, float] = field(default_factory=dict)  # LossWeights fields
    augment: dict[str, Any] | None = None  # LogMelAugment fields (noise floor, EQ); None: clean log-mels
    source_weights: dict[str, float] | None = None  # over-sample the dataset's sources (ShardDataset); None: as stored
    labels: list[int] | None = None  # a `vital-gym dataset select` dataset: train on these labels only (0 true, 1 selected); None: all
    gumbel: dict[str, float] | None = None  # {start, end}: Gumbel-softmax categorical loss, tau annealed
    init_from: str | None = None  # a checkpoint whose weights the model starts from (same space)
    sensitivity: str | None = None  # loss weights measured by `vital-gym sensitivity`: a shipped name (core) or a JSON path
    sensitivity_floor: float = 0.1  # no parameter weighs less than this x its kind's mean
    sensitivity_power: float = 1.0  # weights are sensitivity ** power
    sensitivity_given_audible: bool = False  # each parameter's sensitivity where its module is on (Sensitivity.loss_weights)
    ignore_switched_off: bool = False  # a switched-off module's parameters do not count (losses.py)
    rotations: list[list[str]] | None = None  # modules scored in whichever rotation fits (losses.py), e.g. [[osc_1, osc_2, osc_3]]
    hypothesis_epsilon: float = 0.05  # K > 1 hypotheses: the losers' share of the winner-takes-all loss
    score_weight: float = 0.1  # K > 1: weight of the score head's cross-entropy on the winner
    spread_weight: float = 1.0  # a decoder with spread: weight of its Gaussian NLL (losses.HypothesisLoss)
    switch_teacher: float = 0.5  # a switch-conditioned decoder: the share of samples told their true switches
    train_only: list[str] | None = None  # train only the weights whose names start so (e.g. [decoder.spread_heads])
    save_base_weights: bool = False  # False: a frozen pretrained encoder's weights stay in its file, not in every checkpoint (checkpoint.py)
    steps: int = 20000
    batch_size: int = 64
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_steps: int = 500
    grad_clip: float = 1.0
    val_shards: int = 2
    val_batches: int = 8
    val_render_items: int = 16
    val_every: int = 1000
    log_every: int = 50
    num_workers: int = 1
    seed: int = 0
    device: str = "auto"  # "auto": cuda when present
    threads: int = 0  # torch CPU threads (0: torch's default)

    @classmethod
    def from_yaml(cls, path: str | Path | None, **overrides: Any) -> TrainConfig:
        d = yaml.safe_load(Path(path).read_text()) if path else {}
        d.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown training settings {sorted(unknown)}")
        return cls(**d)


def gumbel_temperature(step: int, total: int, start: float, end: float) -> float:
    """Exponential annealing from ``start`` at step 0 to ``end`` at ``total``."""
    return start * (end / start) ** min(1.0, step / max(1, total))


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Linear warm-up to 1, then cosine decay to 0 at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * progress))


class Validator:
    """Held-out loss and metrics, and the spectral distance of re-rendered predictions."""

    def __init__(self, dataset: Path, manifest: Manifest, shards: list[str], space: ParameterSpace, config: TrainConfig):
        self.loader = DataLoader(ShardDataset(dataset, ("logmel", "params", "midi_note"), shuffle=False, shards=shards), batch_size=config.batch_size)
        self.batches = config.val_batches
        self.codec = PresetCodec(space)
        render = RenderConfig.from_dict(manifest.config.get("render"))
        self.renderers = candidate_renderers(render, screen=False)  # exact, one per core: the optimiser waits meanwhile
        self.mel = spectrogram(MelConfig.from_dict(manifest.config.get("observation")), render.sample_rate)
        self.sample_rate = render.sample_rate
        fields = ("logmel", "params", "midi_note", "velocity")
        data = read_shard(dataset / shards[0], fields)
        n = min(config.val_render_items, len(data["params"]))
        self.items = {k: v[:n] for k, v in data.items()}
        self.truth = self._render([(self.items["params"][i], i) for i in range(n)])

    def _render(self, items: list[tuple[np.ndarray, int]]) -> list[np.ndarray]:
        """Renders of ``(parameter vector, validation item)`` pairs at the item's note and velocity, side by side."""

        def one(renderer: Renderer, item: tuple[np.ndarray, int]) -> np.ndarray:
            x, i = item
            preset = self.codec.to_preset(self.codec.canonical(x))
            return renderer.render(preset, int(self.items["midi_note"][i]), float(self.items["velocity"][i])).audio

        return side_by_side(self.renderers, items, one)

    @torch.no_grad()
    def __call__(self, model: SoundMatcher, loss_fn: HypothesisLoss, device: torch.device, writer: Any, step: int) -> dict[str, float]:
        """Held-out terms and metrics (of the best-scored hypothesis), and spectral distances of renders.

        A switch-conditioned model also reports its terms with the targets' switches told (``loss_switches_told/``).

        ``spectral_distance`` is what ``vital-gym match`` gets without refinement: the best-scored
        preset's render with one hypothesis, the closest of all K renders with several
        (``spectral_distance_top_score``: the best-scored one's); a switch-conditioned model's hypotheses
        are each given their own switches first, as ``vital-gym match`` asks them.
        """
        model.eval()
        sums: dict[str, float] = {}
        count = 0
        for b, batch in enumerate(self.loader):
            if b >= self.batches:
                break
            tokens, notes = model.encoder(batch["logmel"].to(device)), batch["midi_note"].to(device)  # encoded once
            z, scores, log_spread = model.decoder.predictive(tokens, notes)
            x = batch["params"].to(device)
            top = z[torch.arange(len(z)), scores.argmax(1)].float()
            log_spread = None if log_spread is None else log_spread.float()
            terms = {f"loss/{k}": float(t) for k, t in loss_fn(z.float(), scores.float(), x, log_spread).items()}
            if model.switch_conditioned:  # the same targets with their switches told
                told = model.decoder.predictive(tokens, notes, model.decoder.switch_values(x))
                told_terms = loss_fn(told[0].float(), told[1].float(), x, None if told[2] is None else told[2].float())
                terms.update({f"loss_switches_told/{k}": float(t) for k, t in told_terms.items()})
            for k, v in {**terms, **loss_fn.loss.metrics(top, x)}.items():
                sums[k] = sums.get(k, 0.0) + v
            count += 1
        out = {k: v / max(count, 1) for k, v in sums.items()}
        logmel = torch.from_numpy(dequantise(self.items["logmel"]))[:, None].to(device)
        notes = torch.from_numpy(self.items["midi_note"].astype(np.float32)).to(device)
        tokens = model.encoder(logmel)
        z, scores = model.decoder.hypotheses(tokens, notes)
        if model.switch_conditioned:  # each hypothesis given its own switches, as vital-gym match asks
            z, _ = model.decoder.hypotheses(tokens, notes, model.decoder.switches_of(z))
        actions = SoundMatcher.actions(z.float()).cpu().numpy()  # (items, K, action_dim)
        order = scores.argsort(1, descending=True).cpu().numpy()
        best, top_score = [], []
        for i in range(len(actions)):
            xs = np.stack([self.codec.canonical(self.codec.space.action_to_vector(actions[i, h])) for h in order[i]])
            note, velocity = int(self.items["midi_note"][i]), float(self.items["velocity"][i])
            _, rendered, closest, distances = render_closest(self.truth[i], xs, self.codec, self.renderers, note, velocity)
            top_score.append(distances[0])
            best.append(closest)
            audio = rendered.audio
            if i < 2 and writer is not None:
                writer.add_audio(f"val/render_{i}", torch.from_numpy(audio[0]), step, self.sample_rate)
                writer.add_audio(f"val/target_{i}", torch.from_numpy(self.truth[i][0]), step, self.sample_rate)
                pair = np.concatenate([self.mel(self.truth[i]), self.mel(audio)], axis=0)[::-1]  # target on top
                writer.add_image(f"val/logmel_target_over_render_{i}", pair[None], step)
        out["spectral_distance"] = float(np.mean(best))
        if model.num_hypotheses > 1:
            out["spectral_distance_top_score"] = float(np.mean(top_score))
        model.train()
        return out


def build_loss(config: TrainConfig, space: ParameterSpace) -> HypothesisLoss:
    """The loss ``config`` describes: parameter terms (sensitivity-weighted, switched-off modules masked, as
    set) inside the hypotheses' winner-takes-all, with the score and spread terms."""
    weights = (
        Sensitivity.load(find_config("sensitivity", config.sensitivity), space).loss_weights(
            space, config.sensitivity_floor, config.sensitivity_power, config.sensitivity_given_audible
        )
        if config.sensitivity
        else None
    )
    parameters = ParameterLoss(space, LossWeights(**config.loss), weights, config.ignore_switched_off, config.rotations)
    return HypothesisLoss(parameters, config.hypothesis_epsilon, config.score_weight, config.spread_weight)


def told_switches(model: SoundMatcher, x: torch.Tensor, share: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(B, S)``: the true switches of the targets ``x`` ``(B, P)`` for a random ``share`` of them, 0 (not told)
    for the rest. Told, the decoder learns the other parameters given the switches; not told, it still
    learns to predict everything (the switches included) from the sound alone. A told sample's on/off term
    is ~0 (its switches come out decided), so ``train/loss/toggle`` is the untold samples' times ``1 - share``."""
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"switch_teacher={share}: must be in [0, 1]")
    told = torch.rand(x.shape[0], 1, generator=generator, device=x.device) < share
    return model.decoder.switch_values(x) * told


def train_step(
    model: SoundMatcher,
    predictive: Any,
    loss: HypothesisLoss,
    optimizer: torch.optim.Optimizer,
    params: list[torch.Tensor],
    batch: dict[str, torch.Tensor],
    device: torch.device,
    autocast: Any,
    grad_clip: float,
    switch_teacher: float = 0.0,
) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor, torch.Tensor]:
    """One optimiser step of ``model`` (``predictive``: its ``predictive``, compiled or not) on ``batch``
    (``logmel`` (B, 1, n_mels, frames), ``midi_note`` (B,), ``params`` (B, P)); the loss terms, the hypotheses
    ``z`` (B, K, action_dim), their scores (B, K) and the targets.

    ``switch_teacher``: a switch-conditioned model is told the true switches of that share of the batch
    (:func:`told_switches`); their on/off outputs are then decided and cost nothing."""
    x = batch["params"].to(device, non_blocking=True)
    switches = told_switches(model, x, switch_teacher) if model.switch_conditioned else None
    with autocast:
        z, scores, log_spread = predictive(batch["logmel"].to(device, non_blocking=True), batch["midi_note"].to(device, non_blocking=True), switches)
    terms = loss(z.float(), scores.float(), x, None if log_spread is None else log_spread.float())
    optimizer.zero_grad(set_to_none=True)
    terms["total"].backward()
    torch.nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    return terms, z, scores, x


def train(config: TrainConfig, resume: bool = False, log=print, progress: bool = False) -> Path:
    """Train as ``config`` says (``resume``: carry on from ``OUT/last``); the best checkpoint's folder.
    ``progress`` shows a progress bar of the steps, with the time left."""
    from tqdm import tqdm

    if progress and log is print:
        log = tqdm.write
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    auto = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(auto if config.device == "auto" else config.device)
    folders = [Path(f) for f in ([config.dataset] if isinstance(config.dataset, (str, Path)) else config.dataset)]
    if not folders:
        raise ValueError("dataset: give a dataset folder, or a list of them")
    manifests = [Manifest.load(f) for f in folders]
    dataset, manifest = folders[0], manifests[0]  # validated on; the others must match its space and features
    space = ParameterSpace.from_spec(manifest.config["space"])
    train_shards: list[list[str]] = []
    for folder, m in zip(folders, manifests):
        own = ParameterSpace.from_spec(m.config["space"])
        if own.fingerprint != m.space_fingerprint:
            raise ValueError(f"{folder}: its parameter space '{own.name}' changed since the data was generated")
        if m.space_fingerprint != space.fingerprint:
            raise ValueError(f"{folder}: its parameter space is not that of {dataset}; train on one space at a time")
        for key in ("render", "observation"):
            if m.config.get(key) != manifest.config.get(key):
                raise ValueError(f"{folder}: its {key} settings {m.config.get(key)} are not {dataset}'s {manifest.config.get(key)}")
        shards = sorted(m.shards)
        if len(shards) <= config.val_shards:
            raise ValueError(f"{folder} has {len(shards)} finished shards; need more than val_shards={config.val_shards}")
        train_shards.append(shards[: -config.val_shards])  # every folder keeps its last val_shards out of training
    val_shards = sorted(manifest.shards)[-config.val_shards :]
    sources = {n for m in manifests for n in m.config.get("sources", {})}
    if config.source_weights and set(config.source_weights) - sources:
        raise ValueError(f"source_weights names {sorted(set(config.source_weights) - sources)}, not sources of {[str(f) for f in folders]}")

    model_config = ModelConfig.from_dict(config.model)
    observation = MelConfig.from_dict(manifest.config.get("observation"))
    if model_config.encoder.frontend != observation.frontend:
        raise ValueError(
            f"the encoder reads the '{model_config.encoder.frontend}' frontend and {dataset} holds '{observation.frontend}' "
            f"features: set the encoder's frontend to '{observation.frontend}', or generate data with observation: "
            f"{{frontend: {model_config.encoder.frontend}}}"
        )
    model = SoundMatcher(space, model_config).to(device)
    if config.init_from and not resume:
        init_weights(model, config.init_from)
        log(f"weights from {config.init_from}")
    hypothesis_loss = build_loss(config, space)
    loss_fn = hypothesis_loss.loss
    if config.train_only:
        for name, p in model.named_parameters():
            p.requires_grad_(name.startswith(tuple(config.train_only)))
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError(f"train_only={config.train_only} matches no weight of the model")
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, config.warmup_steps, config.steps))
    out = Path(config.out)
    step, epoch, epoch_start = 0, 0, 0
    if resume and (out / "last").is_dir():
        from agents.supervised.checkpoint import load_model

        restored, _, meta = load_model(out / "last", space, device=str(device))
        model.load_state_dict(restored.state_dict())
        state = load_optimizer_state(out / "last")
        if state is None:
            raise ValueError(f"{out / 'last'} has no optimizer state to resume from")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch = int(meta["step"]), int(meta["epoch"])
        epoch_start = meta.get("epoch_start_step")
        log(f"resumed from {out / 'last'} at step {step}")
    predictive = torch.compile(model.predictive) if device.type == "cuda" else model.predictive
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(out))
    validator = Validator(dataset, manifest, val_shards, space, config)
    augment = None
    if config.augment is not None:
        augment = LogMelAugment(**{"unit_db": validator.mel.unit_db, **config.augment})  # the data's front end

    def source_weights(m: Manifest) -> dict[str, float] | None:  # each folder weighs the sources it has
        return None if config.source_weights is None else {k: w for k, w in config.source_weights.items() if k in m.config.get("sources", {})}

    parts = [
        ShardDataset(
            folder,
            ("logmel", "params", "midi_note"),
            shuffle=True,
            seed=config.seed,
            shards=shards,
            augment=augment,
            source_weights=source_weights(m),
            labels=config.labels,
        )
        for folder, m, shards in zip(folders, manifests, train_shards)
    ]
    data = parts[0] if len(parts) == 1 else InterleavedDatasets(parts, seed=config.seed)
    loader = DataLoader(data, batch_size=config.batch_size, num_workers=config.num_workers, drop_last=True, persistent_workers=False)
    n_params = sum(p.numel() for p in params)
    held_out = f"{len(val_shards)} shards held out" + (f" of each of {len(folders)} folders, the first's validated on" if len(folders) > 1 else "")
    log(f"{n_params / 1e6:.2f}M trainable parameters; {len(data)} training samples, {held_out}; device {device}")

    def checkpoint(name: str, metrics: dict[str, float]) -> None:
        save_checkpoint(
            out / name,
            model,
            manifest.config["space"],
            extra={
                "step": step,
                "epoch": epoch,
                "epoch_start_step": epoch_start,
                "metrics": metrics,
                "train_config": dataclasses.asdict(config),
                "dataset": str(dataset) if len(folders) == 1 else [str(f) for f in folders],
                "render": manifest.config.get("render"),
                "observation": manifest.config.get("observation"),
            },
            optimizer_state={"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict()},
            base_weights=config.save_base_weights,
        )

    model.train()
    best = math.inf
    if (out / "best").is_dir():
        best = float(read_config(out / "best").get("metrics", {}).get("spectral_distance", math.inf))
    start, start_step = time.perf_counter(), step
    # A resumed run continues inside its epoch: the batches it already trained on are read and skipped.
    # (Checkpoints before epoch_start_step was recorded: every epoch counted as len(data) // batch_size.)
    if epoch_start is None:
        epoch_start = epoch * (len(data) // config.batch_size)
    skip = max(0, step - epoch_start)
    bar = tqdm(total=config.steps, initial=step, unit="step", disable=not progress)
    while step < config.steps:
        data.set_epoch(epoch)
        batches = 0
        for batch in itertools.islice(loader, skip, None):
            batches += 1
            if config.gumbel:
                loss_fn.set_gumbel_temperature(gumbel_temperature(step, config.steps, config.gumbel["start"], config.gumbel["end"]))
            terms, z, scores, x = train_step(
                model, predictive, hypothesis_loss, optimizer, params, batch, device, autocast, config.grad_clip, config.switch_teacher
            )
            scheduler.step()
            step += 1
            bar.update(1)
            if step % config.log_every == 0:
                for k, v in terms.items():
                    writer.add_scalar(f"train/loss/{k}", float(v.detach()), step)
                top = z.detach()[torch.arange(len(z)), scores.detach().argmax(1)].float()
                for k, v in loss_fn.metrics(top, x).items():
                    writer.add_scalar(f"train/{k}", v, step)
                writer.add_scalar("train/lr", scheduler.get_last_lr()[0], step)
                if loss_fn.gumbel_tau is not None:
                    writer.add_scalar("train/gumbel_tau", loss_fn.gumbel_tau, step)
                rate = (step - start_step) * config.batch_size / (time.perf_counter() - start)
                writer.add_scalar("train/samples_per_second", rate, step)
                log(f"step {step}: loss {float(terms['total'].detach()):.4f} ({rate:.0f} samples/s)")
            if step % config.val_every == 0 or step == config.steps:
                tau, loss_fn.gumbel_tau = loss_fn.gumbel_tau, None  # validation reports plain cross-entropy
                metrics = validator(model, hypothesis_loss, device, writer, step)
                loss_fn.gumbel_tau = tau
                for k, v in metrics.items():
                    writer.add_scalar(f"val/{k}", v, step)
                log(f"step {step}: validation {metrics}")
                checkpoint("last", metrics)
                if metrics["spectral_distance"] < best:
                    best = metrics["spectral_distance"]
                    checkpoint("best", metrics)
            if step >= config.steps:
                break
        if batches == 0 and skip == 0:  # else the loop would start empty epochs for ever
            per_worker = f"; each of the {config.num_workers} loader workers batches its own shards" if config.num_workers > 1 else ""
            raise ValueError(
                f"{', '.join(map(str, folders))}: an epoch of its {len(data)} training samples gave no batch of batch_size={config.batch_size}{per_worker}. "
                "Lower batch_size or num_workers, or generate more samples"
            )
        epoch, skip, epoch_start = epoch + 1, 0, step
    bar.close()
    writer.close()
    return out / "best"
