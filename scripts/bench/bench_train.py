"""Training-step throughput of the sound matcher, loader excluded: samples per second and peak memory.

Times ``agents.supervised.train.train_step`` (forward, loss, backward, AdamW step) on batches made here:
random log-mels and parameter vectors drawn from the model's space. On a GPU it uses what ``train.py``
uses there (bfloat16 autocast and ``torch.compile``); on CPU, float32. The first ``--warmup`` steps (the
compile) are not timed. What a real run reaches also depends on the loader (about 40-45 samples/s for the
shipped architecture on this project's 2-core CPU, where the loader keeps up).

    python scripts/bench/bench_train.py                              # the shipped architecture, batch 64
    python scripts/bench/bench_train.py --batch-size 256 --device cuda
    python scripts/bench/bench_train.py --config supervised_cpu   # another model config
"""

from __future__ import annotations

import argparse
import resource
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from agents.supervised.checkpoint import read_config
from agents.supervised.model import ModelConfig, SoundMatcher
from agents.supervised.train import TrainConfig, build_loss, train_step
from vital_gym.params import ParameterSpace
from vital_gym.resources import find_config

SHIPPED = Path(__file__).resolve().parents[1] / "agents" / "models" / "core_cpu"


def main(argv: list[str] | None = None) -> None:
    warnings.filterwarnings("ignore", category=UserWarning)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", help="a training YAML (default: the shipped model's training config)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20, help="timed steps")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps first (torch.compile on a GPU)")
    ap.add_argument("--device", default="auto", help="cpu, cuda or auto")
    args = ap.parse_args(argv)

    shipped = read_config(SHIPPED)
    # Every weight trained (the shipped model's last stage trained its spread heads alone).
    config = TrainConfig.from_yaml(find_config("train", args.config)) if args.config else TrainConfig(**{**shipped["train_config"], "train_only": None})
    space = ParameterSpace.from_spec(shipped["space"])
    device = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device)
    torch.manual_seed(0)
    model = SoundMatcher(space, ModelConfig.from_dict(config.model)).to(device).train()
    loss = build_loss(config, space)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    predictive = torch.compile(model.predictive) if device.type == "cuda" else model.predictive
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    rng = np.random.default_rng(0)
    enc = model.config.encoder
    b = args.batch_size
    batch = {
        "logmel": torch.rand(b, 1, enc.n_mels, enc.frames),
        "midi_note": torch.from_numpy(rng.choice([48.0, 60.0, 72.0], b)).float(),
        "params": torch.from_numpy(np.stack([space.sample(rng) for _ in range(b)])).float(),
    }
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        train_step(model, predictive, loss, optimizer, params, batch, device, autocast, config.grad_clip, config.switch_teacher)
    sync()
    start = time.perf_counter()
    for _ in range(args.steps):
        train_step(model, predictive, loss, optimizer, params, batch, device, autocast, config.grad_clip, config.switch_teacher)
    sync()
    seconds = time.perf_counter() - start
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"{name}; torch {torch.__version__}; {sum(p.numel() for p in params) / 1e6:.2f}M trained weights, {model.num_hypotheses} hypotheses, batch {b}")
    print(f"{args.steps} steps in {seconds:.2f} s: {seconds / args.steps * 1000:.0f} ms per step, {args.steps * b / seconds:.0f} samples/s")
    if device.type == "cuda":
        print(f"peak GPU memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB")
    else:
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
