import json
from pathlib import Path

import numpy as np
import pytest
import torch

from agents.supervised.checkpoint import CheckpointError, init_weights, load_model, read_config, save_checkpoint
from agents.supervised.losses import HypothesisLoss, ParameterLoss, module_switches
from agents.supervised.model import AudioEncoder, EncoderConfig, LoRALinear, ModelConfig, SoundMatcher, draw_presets, load_vit_weights
from agents.supervised.train import TrainConfig, lr_factor, train
from tests.agents.conftest import TINY_MODEL, tiny_train_config, with_hypotheses
from tests.conftest import TINY_SPACE
from vital_gym.params import ParameterSpace
from vital_gym.resources import config_names, find_config


@pytest.fixture
def tiny_model(tiny_space) -> SoundMatcher:
    torch.manual_seed(0)
    return SoundMatcher(tiny_space, ModelConfig.from_dict(TINY_MODEL))


def ideal_logits(space, x: np.ndarray, scale: float = 20.0) -> torch.Tensor:
    """Raw outputs that encode ``x`` exactly (a very confident, correct network)."""
    a = torch.from_numpy(space.vector_to_action(x))  # +-1 one-hots, 2x - 1 for the rest
    x_c = np.clip(x, 1e-4, 1 - 1e-4)
    z = a * scale
    for i, (p, s) in enumerate(zip(space.parameters, space.layout)):
        if p.kind.value in ("continuous", "integer"):
            z[s.start] = float(np.log(x_c[i] / (1 - x_c[i])))
    return z


def test_outputs_are_env_actions_in_the_action_layout(tiny_model, tiny_space, tiny_codec):
    z = tiny_model(torch.rand(3, 1, 32, 22), torch.tensor([48.0, 60.0, 72.0]))  # fewer frames than the encoder's: padded
    assert z.shape == (3, tiny_space.action_dim)
    actions = SoundMatcher.actions(z).detach().numpy()
    assert np.all(np.abs(actions) < 1)
    for a in actions:
        x = tiny_space.action_to_vector(a)
        assert tiny_codec.to_preset(x).settings  # decodes to a preset
    # Every action dimension is written by exactly one group head.
    dims = torch.cat([getattr(tiny_model.decoder, f"dims_{g}") for g in tiny_model.decoder.group_names])
    assert sorted(dims.tolist()) == list(range(tiny_space.action_dim))
    assert len(tiny_model.decoder.group_names) == len(tiny_space.groups)


def test_actions_of_ideal_logits_decode_to_the_target(tiny_space, tiny_codec, rng):
    x = tiny_codec.canonical(tiny_space.sample(rng))
    decoded = tiny_space.action_to_vector(SoundMatcher.actions(ideal_logits(tiny_space, x)).numpy())
    assert np.allclose(decoded, x, atol=1e-3)


def test_loss_is_small_for_ideal_outputs_and_order_free_over_modulation_slots(tiny_space, tiny_codec, rng):
    loss = ParameterLoss(tiny_space)
    x = tiny_codec.canonical(tiny_space.sample(rng))
    src, dst = tiny_space["mod_1_source"], tiny_space["mod_1_destination"]
    for slot, (s, d) in enumerate([(1, 0), (2, 1)], start=1):  # two connected routes
        x[tiny_space.index[f"mod_{slot}_source"]] = src.normalize(s)
        x[tiny_space.index[f"mod_{slot}_destination"]] = dst.normalize(d)
    swapped = x.copy()
    for k in ("source", "destination", "amount"):
        i, j = tiny_space.index[f"mod_1_{k}"], tiny_space.index[f"mod_2_{k}"]
        swapped[i], swapped[j] = x[j], x[i]
    z = ideal_logits(tiny_space, x)[None]
    good = loss(z, torch.from_numpy(x)[None])
    assert float(good["total"]) < 1e-3
    # The same routes listed in the other slot order cost the same; a wrong network costs more.
    assert float(loss(z, torch.from_numpy(swapped)[None])["modulation"]) == pytest.approx(float(good["modulation"]), abs=1e-6)
    bad = loss(torch.zeros_like(z), torch.from_numpy(x)[None])
    assert all(float(bad[k]) > float(good[k]) for k in ("continuous", "toggle", "categorical", "modulation"))
    metrics = loss.metrics(z, torch.from_numpy(x)[None])
    assert metrics["accuracy/categorical"] == 1.0 and metrics["mae/all"] < 1e-3


def test_lora_freezes_the_encoder_and_starts_as_the_identity():
    config = EncoderConfig(**TINY_MODEL["encoder"], lora_rank=4, lora_blocks=1)
    torch.manual_seed(0)
    enc = AudioEncoder(config)
    trainable = [n for n, p in enc.named_parameters() if p.requires_grad]
    assert trainable and all(".down." in n or ".up." in n for n in trainable)
    assert isinstance(enc.vit.blocks[-1].attn.qkv, LoRALinear)
    torch.manual_seed(0)
    plain = AudioEncoder(EncoderConfig(**TINY_MODEL["encoder"]))
    x = torch.rand(2, 1, 32, 32)
    assert torch.allclose(enc(x), plain(x), atol=1e-6)


def test_audiomae_style_checkpoint_loads(tmp_path):
    """The released files hold {"model": ...} with MAE decoder weights; a shorter time axis keeps its first
    time rows of position embeddings (each patch keeps its own time's), another grid is resampled."""
    torch.manual_seed(1)
    source = AudioEncoder(EncoderConfig(**{**TINY_MODEL["encoder"], "frames": 64}))
    state = {f"module.{k}": v for k, v in source.vit.state_dict().items()}
    state["module.decoder_embed.weight"] = torch.zeros(3, 3)
    state["module.mask_token"] = torch.zeros(1, 1, 32)
    path = tmp_path / "audiomae.pth"
    torch.save({"model": state}, path)
    target = AudioEncoder(EncoderConfig(**{**TINY_MODEL["encoder"], "frames": 32}))
    load_vit_weights(target.vit, path)
    assert torch.equal(target.vit.blocks[0].attn.qkv.weight, source.vit.blocks[0].attn.qkv.weight)
    assert torch.equal(target.vit.pos_embed, source.vit.pos_embed[:, : 1 + 2 * 2])  # the first 2 of 4 time rows of a 4 x 2 grid
    longer = AudioEncoder(EncoderConfig(**{**TINY_MODEL["encoder"], "frames": 96}))
    load_vit_weights(longer.vit, path)
    assert longer.vit.pos_embed.shape[1] == 1 + 6 * 2  # resampled from a 4 x 2 to a 6 x 2 patch grid
    del state["module.blocks.0.attn.qkv.weight"]
    torch.save({"model": state}, path)
    with pytest.raises(ValueError, match="missing"):
        load_vit_weights(target.vit, path)
    with pytest.raises(FileNotFoundError):
        load_vit_weights(target.vit, tmp_path / "absent.pth")


def test_an_encoder_checkpoint_from_the_hugging_face_cache_loads_offline(tmp_path, monkeypatch):
    """``hf-hub:OWNER/REPO/FILE`` goes through huggingface_hub's own download, which offline reads its cache."""
    import huggingface_hub.constants

    from agents.supervised.model import encoder_checkpoint_path

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--someone--audiomae"
    (repo / "snapshots" / commit / "weights").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    torch.manual_seed(3)
    source = AudioEncoder(EncoderConfig(**TINY_MODEL["encoder"]))
    torch.save({"model": source.vit.state_dict()}, repo / "snapshots" / commit / "weights" / "pretrained.pth")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    spec = "hf-hub:someone/audiomae/weights/pretrained.pth"
    assert encoder_checkpoint_path(spec).is_file()
    loaded = AudioEncoder(EncoderConfig(**{**TINY_MODEL["encoder"], "checkpoint": spec}))
    assert torch.equal(loaded.vit.blocks[0].attn.qkv.weight, source.vit.blocks[0].attn.qkv.weight)
    with pytest.raises(FileNotFoundError, match="hf-hub:someone/other/pretrained.pth: .*download it once online"):
        encoder_checkpoint_path("hf-hub:someone/other/pretrained.pth")
    with pytest.raises(ValueError, match="give hf-hub:OWNER/REPO/FILE"):
        encoder_checkpoint_path("hf-hub:someone/pretrained.pth")
    assert encoder_checkpoint_path("weights/pretrained.pth") == Path("weights/pretrained.pth")


def test_a_fine_tuned_audiomae_file_loads_its_fc_norm_as_the_last_norm(tmp_path):
    """AudioMAE's fine-tuned ViT deletes ``norm`` and pools into ``fc_norm`` (and a classifier ``head``)."""
    torch.manual_seed(2)
    source = AudioEncoder(EncoderConfig(**TINY_MODEL["encoder"]))
    state = {k: v for k, v in source.vit.state_dict().items() if not k.startswith("norm.")}
    state.update({"fc_norm.weight": torch.rand(32), "fc_norm.bias": torch.rand(32), "head.weight": torch.zeros(527, 32)})
    torch.save({"model": state}, tmp_path / "finetuned.pth")
    target = AudioEncoder(EncoderConfig(**TINY_MODEL["encoder"]))
    load_vit_weights(target.vit, tmp_path / "finetuned.pth")
    assert torch.equal(target.vit.norm.weight, state["fc_norm.weight"]) and torch.equal(target.vit.norm.bias, state["fc_norm.bias"])
    assert torch.equal(target.vit.blocks[0].mlp.fc1.weight, source.vit.blocks[0].mlp.fc1.weight)


def test_an_audiomae_frontend_encoder_reads_audiomaes_normalised_filterbank_padded_as_audiomae_pads():
    from vital_gym.features import AudioMAEFilterbank

    torch.manual_seed(0)
    enc = AudioEncoder(EncoderConfig(**{**TINY_MODEL["encoder"], "frontend": "audiomae"})).eval()
    seen = []
    enc.vit.patch_embed.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    unit = torch.rand(2, 1, 32, 23)  # (B, 1, n_mels, frames): 23 frames of "audiomae" features
    enc(unit)
    z = seen[0]  # (B, 1, frames, n_mels) as the ViT's patch embedding gets it
    f = AudioMAEFilterbank
    assert z.shape == (2, 1, 32, 32)
    assert torch.allclose(z[..., :23, :], f.Z_FLOOR + (f.Z_TOP - f.Z_FLOOR) * unit.transpose(-1, -2))
    assert torch.allclose(z[..., 23:, :], torch.tensor(f.Z_PAD))
    assert EncoderConfig.audiomae_base().frontend == "audiomae"
    with pytest.raises(ValueError, match="encoder frontend='mfcc'"):
        EncoderConfig(frontend="mfcc")


def test_checkpoint_round_trip_and_refusal_of_another_space(tmp_path, tiny_model, tiny_space, core_space):
    folder = save_checkpoint(tmp_path / "ckpt", tiny_model, TINY_SPACE, extra={"step": 3})
    model, space, meta = load_model(folder, tiny_space)
    assert space.fingerprint == tiny_space.fingerprint and meta["step"] == 3
    x, notes = torch.rand(2, 1, 32, 32), torch.tensor([55.0, 67.0])
    assert torch.equal(model(x, notes), tiny_model.eval()(x, notes))
    with pytest.raises(CheckpointError, match="trained on parameter space 'tiny'"):
        load_model(folder, core_space)
    with pytest.raises(CheckpointError, match="not a checkpoint"):
        read_config(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary folders left behind


def without_note(model_config: dict) -> ModelConfig:
    return ModelConfig.from_dict({**model_config, "decoder": {**model_config["decoder"], "note_conditioning": False}})


def test_note_conditioning_starts_as_the_unconditioned_network_and_then_follows_the_note(tiny_space):
    torch.manual_seed(0)
    plain = SoundMatcher(tiny_space, without_note(TINY_MODEL)).eval()
    torch.manual_seed(0)
    conditioned = SoundMatcher(tiny_space, ModelConfig.from_dict(TINY_MODEL)).eval()
    x = torch.rand(2, 1, 32, 32)
    low, high = torch.tensor([48.0, 48.0]), torch.tensor([72.0, 72.0])
    assert conditioned.note_conditioned and not plain.note_conditioned
    assert torch.allclose(conditioned(x, low), plain(x), atol=1e-6)  # the note map starts at zero
    assert torch.equal(plain(x, low), plain(x, high))  # an unconditioned network ignores the note
    with torch.no_grad():
        conditioned.decoder.note_proj.weight.normal_()
    assert not torch.allclose(conditioned(x, low), conditioned(x, high), atol=1e-3)
    with pytest.raises(ValueError, match="pass midi_note"):
        conditioned(x)


def test_init_weights_fine_tunes_an_unconditioned_checkpoint_into_a_conditioned_model(tmp_path, tiny_space, core_space):
    torch.manual_seed(0)
    plain = SoundMatcher(tiny_space, without_note(TINY_MODEL)).eval()
    folder = save_checkpoint(tmp_path / "plain", plain, TINY_SPACE)
    torch.manual_seed(1)  # other random weights, replaced by the checkpoint's
    conditioned = SoundMatcher(tiny_space, ModelConfig.from_dict(TINY_MODEL)).eval()
    init_weights(conditioned, folder)
    x = torch.rand(2, 1, 32, 32)
    assert torch.allclose(conditioned(x, torch.tensor([48.0, 72.0])), plain(x), atol=1e-6)
    bigger = SoundMatcher(tiny_space, ModelConfig.from_dict({**TINY_MODEL, "decoder": {**TINY_MODEL["decoder"], "depth": 2}}))
    with pytest.raises(CheckpointError, match="another architecture"):
        init_weights(bigger, folder)
    with pytest.raises(CheckpointError, match="another parameter space"):
        init_weights(SoundMatcher(core_space, ModelConfig.from_dict(TINY_MODEL)), folder)


def test_lr_schedule_warms_up_then_decays():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100) == pytest.approx(0.5)
    assert lr_factor(100, 10, 100) == pytest.approx(0.0, abs=1e-9)


def test_training_runs_logs_checkpoints_and_resumes(tmp_path, tiny_space, tiny_dataset):
    config = tiny_train_config(tiny_dataset, tmp_path / "run", augment={"p": 0.5}, gumbel={"start": 1.0, "end": 0.2})
    best = train(config, log=lambda *_: None)
    meta = read_config(tmp_path / "run" / "last")
    assert meta["step"] == 4 and np.isfinite(meta["metrics"]["spectral_distance"])
    assert (meta["epoch"], meta["epoch_start_step"]) == (1, 3)  # 9 training samples: 3 batches of 3 an epoch
    assert "loss/total" in meta["metrics"] and "accuracy/categorical" in meta["metrics"]
    assert read_config(best)["metrics"]["spectral_distance"] <= meta["metrics"]["spectral_distance"]
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
    model, _, _ = load_model(best, tiny_space)
    # Resuming carries on from step 4 to the new total, with the optimizer's state.
    train(TrainConfig(**{**config.__dict__, "steps": 6}), resume=True, log=lambda *_: None)
    assert read_config(tmp_path / "run" / "last")["step"] == 6


def test_training_over_samples_sources_and_resumes_inside_a_thinned_epoch(tmp_path, tiny_dataset):
    from agents.dataset import Manifest, read_shard

    train_shards = sorted(Manifest.load(tiny_dataset).shards)[:-1]
    uniform = sum(int((read_shard(tiny_dataset / n, ("source",))["source"] == 0).sum()) for n in train_shards)
    assert 0 < uniform < 9
    config = tiny_train_config(
        tiny_dataset, tmp_path / "run", batch_size=1, steps=uniform + 1, val_every=uniform + 1, source_weights={"uniform": 1.0, "pluck": 0.0}
    )
    train(config, log=lambda *_: None)
    meta = read_config(tmp_path / "run" / "last")
    assert (meta["epoch"], meta["epoch_start_step"]) == (1, uniform)  # an epoch is the uniform samples alone
    train(TrainConfig(**{**config.__dict__, "steps": uniform + 2}), resume=True, log=lambda *_: None)
    assert read_config(tmp_path / "run" / "last")["step"] == uniform + 2


@pytest.fixture(scope="module")
def other_tiny_dataset(tmp_path_factory):
    """A second tiny dataset like ``tiny_dataset`` (12 samples, 4 shards of 3) from another seed."""
    from agents.dataset import generate
    from tests.agents.test_dataset import tiny_config

    folder = tmp_path_factory.mktemp("other_tiny_dataset")
    generate(tiny_config(seed=5), folder, 12, workers=1, progress=False)
    return folder


def both(config: TrainConfig, other: Path) -> TrainConfig:
    """``config`` trained on its dataset and ``other`` together."""
    return TrainConfig(**{**config.__dict__, "dataset": [config.dataset, str(other)]})


def test_training_on_several_folders_interleaves_them_and_holds_out_each_ones_last_shards(tmp_path, tiny_dataset, other_tiny_dataset):
    config = both(tiny_train_config(tiny_dataset, tmp_path / "run", steps=7, val_every=7), other_tiny_dataset)
    logged = []
    train(config, log=logged.append)
    assert any("18 training samples" in line for line in logged)  # 9 of each: every folder's last shard held out
    meta = read_config(tmp_path / "run" / "last")
    assert (meta["epoch"], meta["epoch_start_step"]) == (1, 6)  # an epoch is 6 batches of 3
    assert meta["dataset"] == [str(tiny_dataset), str(other_tiny_dataset)]


@pytest.mark.parametrize(
    "changes, problem",
    [
        ({"observation": {"n_fft": 512, "hop_length": 256, "n_mels": 16}}, "observation settings"),
        ({"render": {"note_seconds": 0.1, "render_seconds": 0.25}}, "render settings"),
    ],
)
def test_folders_whose_log_mels_differ_are_not_trained_on_together(tmp_path, tiny_dataset, changes, problem):
    from agents.dataset import generate
    from tests.agents.test_dataset import tiny_config

    other = tmp_path / "other"
    generate(tiny_config(**changes), other, 6, workers=1, progress=False)
    config = both(tiny_train_config(tiny_dataset, tmp_path / "run"), other)
    with pytest.raises(ValueError, match=f"{other}: its {problem}"):
        train(config, log=lambda *_: None)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def audiomae_tiny_dataset(tmp_path_factory):
    """``tiny_dataset``'s settings with AudioMAE's filterbank (32 bands) as the observation."""
    from agents.dataset import generate
    from tests.agents.test_dataset import tiny_config

    folder = tmp_path_factory.mktemp("audiomae_tiny_dataset")
    generate(tiny_config(observation={"frontend": "audiomae", "n_mels": 32}), folder, 12, workers=1, progress=False)
    return folder


def with_frontend(frontend: str) -> dict:
    return {**TINY_MODEL, "encoder": {**TINY_MODEL["encoder"], "frontend": frontend}}


def test_an_audiomae_frontend_model_trains_on_audiomae_features_and_matches_with_them(tmp_path, audiomae_tiny_dataset, tiny_space):
    from agents.dataset import read_shard
    from agents.match import Matcher

    logmel = read_shard(next(audiomae_tiny_dataset.glob("shard-*.npz")), ("logmel",))["logmel"]
    assert logmel.shape[1:] == (32, 23)  # 0.25 s: 1 + (4000 - 400) // 160 frames at 16 kHz
    config = tiny_train_config(audiomae_tiny_dataset, tmp_path / "run", model=with_frontend("audiomae"), augment={"p": 1.0})
    train(config, log=lambda *_: None)
    meta = read_config(tmp_path / "run" / "last")
    assert np.isfinite(meta["metrics"]["spectral_distance"]) and meta["observation"]["frontend"] == "audiomae"
    matcher = Matcher(tmp_path / "run" / "last")
    assert matcher.mel.config.frontend == "audiomae"
    target = np.random.default_rng(0).standard_normal((1, 11025)).astype(np.float32) * 0.1
    assert np.isfinite(matcher.match(target, midi_note=60, draws=0).distance)


@pytest.mark.parametrize("frontend, data", [("audiomae", "tiny_dataset"), ("vital", "audiomae_tiny_dataset")])
def test_an_encoder_is_not_trained_on_another_frontends_features(tmp_path, request, frontend, data):
    dataset = request.getfixturevalue(data)
    with pytest.raises(ValueError, match=f"the encoder reads the '{frontend}' frontend and {dataset} holds"):
        train(tiny_train_config(dataset, tmp_path / "run", model=with_frontend(frontend)), log=lambda *_: None)
    assert not (tmp_path / "run").exists()


def test_source_weights_naming_no_folders_source_are_refused(tmp_path, tiny_dataset, other_tiny_dataset):
    config = both(tiny_train_config(tiny_dataset, tmp_path / "run", source_weights={"drums": 1.0}), other_tiny_dataset)
    with pytest.raises(ValueError, match="drums"):
        train(config, log=lambda *_: None)


def test_gumbel_softmax_categorical_loss_and_its_annealing(tiny_space, tiny_codec, rng):
    from agents.supervised.train import gumbel_temperature

    loss = ParameterLoss(tiny_space)
    x = torch.from_numpy(tiny_codec.canonical(tiny_space.sample(rng)))[None].repeat(64, 1)
    z = torch.randn(64, tiny_space.action_dim, requires_grad=True)
    plain = loss(z, x)["categorical"]
    loss.set_gumbel_temperature(1.0)
    torch.manual_seed(0)
    relaxed = loss(z, x)["categorical"]
    assert torch.isfinite(relaxed) and not torch.isclose(relaxed, plain)
    relaxed.backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
    # As tau -> 0 the sample is one-hot at the noisy argmax; with confident correct logits it is the target.
    loss.set_gumbel_temperature(0.05)
    assert float(loss(ideal_logits(tiny_space, x[0].numpy())[None], x[:1])["categorical"]) < 1e-3
    with pytest.raises(ValueError, match="> 0"):
        loss.set_gumbel_temperature(0.0)
    assert gumbel_temperature(0, 100, 1.0, 0.1) == pytest.approx(1.0)
    assert gumbel_temperature(50, 100, 1.0, 0.1) == pytest.approx(0.1**0.5)
    assert gumbel_temperature(200, 100, 1.0, 0.1) == pytest.approx(0.1)


def test_module_switches_name_each_parameters_on_off_switch(tiny_space):
    switch = module_switches(tiny_space)
    name = {p.name: (tiny_space.parameters[s].name if s >= 0 else None) for p, s in zip(tiny_space.parameters, switch)}
    assert name["osc_1_level"] == name["osc_1_transpose"] == "osc_1_on"
    assert name["filter_1_model"] == name["filter_1_cutoff"] == "filter_1_on"
    assert name["osc_1_on"] is None and name["filter_1_on"] is None  # a switch always counts
    assert name["env_1_attack"] is None and name["lfo_1_shape"] is None  # modules without a switch


@pytest.mark.parametrize("switched_on", [False, True])
def test_ignore_switched_off_drops_the_errors_of_a_silent_module(tiny_space, tiny_codec, rng, switched_on):
    x = tiny_codec.canonical(tiny_space.sample(rng))
    for s in ("osc_1_on", "filter_1_on"):
        x[tiny_space.index[s]] = 1.0
    x[tiny_space.index["filter_1_on"]] = float(switched_on)
    z = ideal_logits(tiny_space, x)[None]
    wrong = z.clone()
    cutoff = tiny_space.layout[tiny_space.index["filter_1_cutoff"]].start
    wrong[0, cutoff] = -8.0 if x[tiny_space.index["filter_1_cutoff"]] > 0.5 else 8.0
    model = tiny_space.layout[tiny_space.index["filter_1_model"]]
    wrong[0, model.start : model.stop] = wrong[0, model.start : model.stop].flip(0)  # another option wins
    target = torch.from_numpy(x)[None]
    plain, gated = ParameterLoss(tiny_space)(wrong, target), ParameterLoss(tiny_space, ignore_switched_off=True)(wrong, target)
    for term in ("continuous", "categorical"):
        assert float(plain[term]) > 1e-2
        if switched_on:  # every module on: the same loss
            assert float(gated[term]) == pytest.approx(float(plain[term]), rel=1e-5)
        else:  # filter 1 off: its cutoff and model are not heard, and not counted
            assert float(gated[term]) < 1e-3


@pytest.mark.parametrize("path", [find_config("train", name) for name in config_names("train")], ids=lambda p: p.name)
def test_shipped_training_configs_parse(path, core_space):
    from agents.supervised.model import ModelConfig
    from agents.supervised.sensitivity import Sensitivity
    from agents.supervised.train import TrainConfig

    config = TrainConfig.from_yaml(path)
    ModelConfig.from_dict(config.model)
    if config.rotations:  # the rotated groups exist in the core space and have the same controls
        from agents.supervised.losses import rotation_indices

        assert rotation_indices(core_space, config.rotations).shape[0] == max(len(g) for g in config.rotations)
    if config.sensitivity:  # a named weights file exists and fits the space it was measured on
        path = find_config("sensitivity", config.sensitivity)
        space = ParameterSpace.load(json.loads(path.read_text())["space"])
        assert Sensitivity.load(path, space).loss_weights(space).shape == (len(space.parameters),)


def test_a_decoder_with_hypotheses_proposes_k_presets_and_forward_is_the_best_scored(tiny_space):
    torch.manual_seed(0)
    model = SoundMatcher(tiny_space, with_hypotheses(TINY_MODEL, 4)).eval()
    x, notes = torch.rand(3, 1, 32, 32), torch.tensor([48.0, 60.0, 72.0])
    z, scores = model.hypotheses(x, notes)
    assert z.shape == (3, 4, tiny_space.action_dim) and scores.shape == (3, 4) and model.num_hypotheses == 4
    assert not torch.allclose(z[:, 0], z[:, 1], atol=1e-4)  # the hypotheses start apart
    assert torch.equal(model(x, notes), z[torch.arange(3), scores.argmax(1)])
    # One hypothesis: the same network as before hypotheses existed (forward is its only row).
    torch.manual_seed(0)
    single = SoundMatcher(tiny_space, ModelConfig.from_dict(TINY_MODEL)).eval()
    z1, s1 = single.hypotheses(x, notes)
    assert z1.shape == (3, 1, tiny_space.action_dim) and torch.equal(s1, torch.zeros(3, 1))
    assert torch.equal(single(x, notes), z1[:, 0])
    with pytest.raises(ValueError, match="at least one"):
        SoundMatcher(tiny_space, with_hypotheses(TINY_MODEL, 0))


def test_draw_presets_draws_choices_at_the_decoders_probabilities_and_keeps_continuous_outputs(tiny_space):
    from vital_gym.params import Kind

    z = torch.randn(2, tiny_space.action_dim, generator=torch.Generator().manual_seed(0)) * 2.0  # (B, action_dim)
    draws = draw_presets(z, tiny_space, 4000, torch.Generator().manual_seed(1))
    assert draws.shape == (4000, 2, tiny_space.action_dim)
    assert torch.equal(draws, draw_presets(z, tiny_space, 4000, torch.Generator().manual_seed(1)))
    kinds = {s.kind for s in tiny_space.layout}
    assert {Kind.CATEGORICAL, Kind.TOGGLE, Kind.CONTINUOUS} <= kinds  # the test covers every kind
    for s in tiny_space.layout:
        block, logits = draws[..., s.slice], z[..., s.slice]
        if s.kind is Kind.CATEGORICAL:
            assert torch.all((block > 0).sum(-1) == 1)  # one choice per draw, decoded by argmax
            freq = (block > 0).float().mean(0)
            assert torch.allclose(freq, torch.softmax(logits, -1), atol=0.035), s.name
        elif s.kind is Kind.TOGGLE:
            assert torch.allclose((block > 0).float().mean(0), torch.sigmoid(logits), atol=0.035), s.name
        else:
            assert torch.equal(block, logits.expand_as(block)), s.name
    vector = tiny_space.action_to_vector(SoundMatcher.actions(draws[0, 0]).numpy())
    assert vector.shape == (len(tiny_space.parameters),)
    with pytest.raises(ValueError, match="do not fit space"):
        draw_presets(z[:, :-1], tiny_space, 2)


def test_init_weights_turns_a_one_hypothesis_checkpoint_into_k_copies_of_it(tmp_path, tiny_space):
    torch.manual_seed(0)
    single = SoundMatcher(tiny_space, ModelConfig.from_dict(TINY_MODEL)).eval()
    folder = save_checkpoint(tmp_path / "single", single, TINY_SPACE)
    several = SoundMatcher(tiny_space, with_hypotheses(TINY_MODEL, 3)).eval()
    init_weights(several, folder)
    with torch.no_grad():
        several.decoder.hypothesis_queries.zero_()
    x, notes = torch.rand(2, 1, 32, 32), torch.tensor([48.0, 72.0])
    z, _ = several.hypotheses(x, notes)
    assert torch.allclose(z, single(x, notes)[:, None].expand_as(z), atol=1e-5)
    # Saved and loaded with its hypotheses.
    model, _, _ = load_model(save_checkpoint(tmp_path / "several", several, TINY_SPACE), tiny_space)
    assert model.num_hypotheses == 3
    # More hypotheses from it: its three come first, unchanged; the next are perturbed copies of them.
    with torch.no_grad():
        model.decoder.hypothesis_queries.normal_(0, 0.02)
    folder3 = save_checkpoint(tmp_path / "three", model, TINY_SPACE)
    torch.manual_seed(5)
    more = SoundMatcher(tiny_space, with_hypotheses(TINY_MODEL, 5)).eval()
    own = more.decoder.hypothesis_queries.detach().clone()
    init_weights(more, folder3)
    theirs = model.decoder.hypothesis_queries.detach()
    assert torch.equal(more.decoder.hypothesis_queries[:3], theirs)
    assert torch.allclose(more.decoder.hypothesis_queries[3:], theirs[:2] + own[3:])
    assert torch.allclose(more.hypotheses(x, notes)[0][:, :3], model.hypotheses(x, notes)[0], atol=1e-5)
    with pytest.raises(CheckpointError, match="do not fit"):
        init_weights(SoundMatcher(tiny_space, with_hypotheses(TINY_MODEL, 2)), folder3)  # fewer: refused


def test_per_sample_losses_average_to_the_batch_loss(tiny_space, tiny_codec, rng):
    loss = ParameterLoss(tiny_space)
    x = torch.from_numpy(np.stack([tiny_codec.canonical(tiny_space.sample(rng)) for _ in range(5)]))
    z = torch.randn(5, tiny_space.action_dim)
    per, mean = loss.per_sample(z, x), loss(z, x)
    assert set(per) == set(mean)
    for name in mean:
        assert per[name].shape == (5,)
        assert float(per[name].mean()) == pytest.approx(float(mean[name]), rel=1e-5)


@pytest.mark.parametrize("epsilon", [0.0, 0.1])
def test_hypothesis_loss_trains_the_winner_and_its_score(tiny_space, tiny_codec, rng, epsilon):
    base = ParameterLoss(tiny_space)
    x = torch.from_numpy(np.stack([tiny_codec.canonical(tiny_space.sample(rng)) for _ in range(2)]))
    right = torch.stack([ideal_logits(tiny_space, v.numpy()) for v in x])
    wrong = torch.zeros_like(right)
    # Sample 0's good guess is hypothesis 1, sample 1's is hypothesis 0.
    z = torch.stack([torch.stack([wrong[0], right[0]]), torch.stack([right[1], wrong[1]])]).requires_grad_(True)
    scores = torch.zeros(2, 2, requires_grad=True)
    loss = HypothesisLoss(base, epsilon=epsilon, score_weight=0.5)
    per, winner = loss.winners(z, x)
    assert winner.tolist() == [1, 0] and per["total"].shape == (2, 2)
    terms = loss(z, scores, x)
    value = {k: float(v.detach()) for k, v in terms.items()}
    assert value["continuous"] < 1e-3  # the winners' terms
    expected = float(((1 - epsilon) * per["total"][[0, 1], [1, 0]] + epsilon * per["total"][[0, 1], [0, 1]]).mean().detach())
    assert value["hypotheses"] == pytest.approx(expected, rel=1e-5)
    assert value["score"] == pytest.approx(np.log(2), rel=1e-5)
    assert value["total"] == pytest.approx(expected + 0.5 * np.log(2), rel=1e-5)
    terms["total"].backward()
    losers_grad = float(z.grad[0, 0].abs().sum() + z.grad[1, 1].abs().sum())
    assert (losers_grad > 0) == (epsilon > 0)  # relaxed WTA: the losers learn a little, or not at all
    assert float(scores.grad[0, 1]) < 0 and float(scores.grad[1, 0]) < 0  # the winners' scores go up
    # One hypothesis: exactly the parameter loss.
    with torch.no_grad():
        one = HypothesisLoss(base)(z[:, :1], scores[:, :1], x)
        assert float(one["total"]) == pytest.approx(float(base(z[:, 0], x)["total"]), rel=1e-6)
    with pytest.raises(ValueError, match="epsilon"):
        HypothesisLoss(base, epsilon=1.0)


def test_training_with_hypotheses_logs_both_validation_distances(tmp_path, tiny_dataset):
    config = tiny_train_config(tiny_dataset, tmp_path / "run", model=with_hypotheses(TINY_MODEL, 3).to_dict(), steps=2)
    train(config, log=lambda *_: None)
    metrics = read_config(tmp_path / "run" / "last")["metrics"]
    assert {"loss/hypotheses", "loss/score", "spectral_distance_top_score"} <= set(metrics)
    assert metrics["spectral_distance"] <= metrics["spectral_distance_top_score"]  # the closest of K renders


def with_spread(model: dict, k: int) -> ModelConfig:
    return ModelConfig.from_dict({**model, "decoder": {**model["decoder"], "hypotheses": k, "spread": True}})


def test_spread_heads_start_small_and_learning_them_leaves_the_prediction_alone(tiny_space, tiny_codec, rng):
    from agents.supervised.model import LOG_SPREAD_INIT

    torch.manual_seed(0)
    model = SoundMatcher(tiny_space, with_spread(TINY_MODEL, 2))
    logmel, notes = torch.rand(4, 1, 32, 32), torch.full((4,), 60.0)
    z, scores, log_spread = model.predictive(logmel, notes)
    assert log_spread.shape == z.shape == (4, 2, tiny_space.action_dim)
    assert torch.allclose(log_spread, torch.full_like(log_spread, LOG_SPREAD_INIT))
    assert SoundMatcher(tiny_space, with_hypotheses(TINY_MODEL, 2)).predictive(logmel, notes)[2] is None
    x = torch.from_numpy(np.stack([tiny_codec.canonical(tiny_space.sample(rng)) for _ in range(4)]))
    loss = HypothesisLoss(ParameterLoss(tiny_space))
    terms = loss(z, scores, x, log_spread)
    with torch.no_grad():
        plain = loss(z, scores, x)["total"].item()
    assert terms["total"].detach().item() == pytest.approx(plain + terms["spread"].detach().item())
    terms["spread"].backward()
    assert all(p.grad is None for name, p in model.named_parameters() if not name.startswith("decoder.spread_heads"))
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.decoder.spread_heads.parameters())


def test_spread_nll_is_least_at_the_actual_error(tiny_space, tiny_codec, rng):
    loss = HypothesisLoss(ParameterLoss(tiny_space))
    x = torch.from_numpy(np.stack([tiny_codec.canonical(tiny_space.sample(rng)) for _ in range(64)]))
    z = torch.stack([ideal_logits(tiny_space, v) for v in x.numpy()])[:, None]  # (B, 1, D): exact values ...
    dims = loss.loss.cont_dims
    z[..., dims] = torch.logit((torch.sigmoid(z[..., dims]) + 0.1).clamp(1e-4, 1 - 1e-4))  # ... all 0.1 high (or clipped)
    error = (torch.sigmoid(z[:, 0, dims]) - x[:, loss.loss.cont_params]).abs()
    rms = float(torch.sqrt((error**2 * loss.loss.audible(x)[:, loss.loss.cont_params]).sum() / loss.loss.audible(x)[:, loss.loss.cont_params].sum()))
    grid = np.linspace(-5.0, 0.0, 101)
    nll = [float(loss.spread_nll(z, torch.full_like(z, g), x).mean()) for g in grid]
    assert grid[int(np.argmin(nll))] == pytest.approx(np.log(rms), abs=0.05)


def test_draws_move_continuous_values_by_the_predicted_spread(tiny_space):
    from vital_gym.params import Kind

    z = torch.zeros(tiny_space.action_dim)  # every continuous value at 0.5
    log_spread = torch.full_like(z, float(np.log(0.1)))
    draws = draw_presets(z, tiny_space, 4000, torch.Generator().manual_seed(0), log_spread)
    for s in tiny_space.layout:
        if s.kind in (Kind.CONTINUOUS, Kind.INTEGER):
            values = torch.sigmoid(draws[:, s.start])
            assert float(values.mean()) == pytest.approx(0.5, abs=0.01) and float(values.std()) == pytest.approx(0.1, abs=0.01)
    with pytest.raises(ValueError, match="log_spread of shape"):
        draw_presets(z, tiny_space, 2, log_spread=log_spread[:-1])


@pytest.mark.parametrize("temperature", [0.0, 0.5, 2.0])
def test_draw_temperature_scales_logits_and_spreads(tiny_space, temperature):
    from vital_gym.params import Kind

    z = torch.randn(tiny_space.action_dim, generator=torch.Generator().manual_seed(0)) * 2.0
    log_spread = torch.full_like(z, float(np.log(0.1)))
    draws = draw_presets(z, tiny_space, 4000, torch.Generator().manual_seed(1), log_spread, temperature)
    if temperature == 0:  # argmax decoding: every draw is the hypothesis itself
        assert torch.equal(draws, z.expand_as(draws))
        return
    for s in tiny_space.layout:
        block, logits = draws[..., s.slice], z[s.slice]
        if s.kind is Kind.CATEGORICAL:
            assert torch.allclose((block > 0).float().mean(0), torch.softmax(logits / temperature, -1), atol=0.035), s.name
        elif s.kind is Kind.TOGGLE:
            assert torch.allclose((block > 0).float().mean(0), torch.sigmoid(logits / temperature), atol=0.035), s.name
    cont = next(s for s in tiny_space.layout if s.kind is Kind.CONTINUOUS and 0.3 < float(torch.sigmoid(z[s.start])) < 0.7)
    assert float(torch.sigmoid(draws[:, cont.start]).std()) == pytest.approx(0.1 * temperature, rel=0.1)
    with pytest.raises(ValueError, match="temperature"):
        draw_presets(z, tiny_space, 2, temperature=-1.0)


@pytest.mark.parametrize("batch_size, num_workers", [(10, 0), (4, 3)])
def test_a_dataset_too_small_for_one_batch_is_refused_not_looped_on(tmp_path, tiny_dataset, batch_size, num_workers):
    """9 training samples in 3 shards: no batch of 10, and no worker's one shard of 3 fills a batch of 4."""
    config = tiny_train_config(tiny_dataset, tmp_path / "run", batch_size=batch_size, num_workers=num_workers)
    with pytest.raises(ValueError, match=f"gave no batch of batch_size={batch_size}"):
        train(config, log=lambda *_: None)


def test_a_spread_fine_tune_trains_only_the_spread_heads(tmp_path, tiny_space, tiny_dataset, tiny_checkpoint):
    config = tiny_train_config(
        tiny_dataset,
        tmp_path / "run",
        init_from=str(tiny_checkpoint),
        train_only=["decoder.spread_heads"],
        model={**TINY_MODEL, "decoder": {**TINY_MODEL["decoder"], "spread": True}},
    )
    best = train(config, log=lambda *_: None)
    assert "loss/spread" in read_config(tmp_path / "run" / "last")["metrics"]
    before, _, _ = load_model(tiny_checkpoint, tiny_space)
    after, _, _ = load_model(best, tiny_space)
    new = after.state_dict()
    for name, value in before.state_dict().items():
        assert torch.equal(new[name], value), name
    assert any(not torch.equal(v, torch.zeros_like(v)) for k, v in new.items() if k.startswith("decoder.spread_heads") and k.endswith("weight"))
    with pytest.raises(ValueError, match="matches no weight"):
        train(TrainConfig(**{**config.__dict__, "train_only": ["nothing."], "out": str(tmp_path / "other")}), log=lambda *_: None)


def with_switches(model: dict, k: int) -> ModelConfig:
    return ModelConfig.from_dict({**model, "decoder": {**model["decoder"], "hypotheses": k, "switch_conditioning": True}})


def test_switch_conditioning_starts_as_the_plain_network_and_decides_the_told_switches(tmp_path, tiny_space, tiny_codec, rng):
    from agents.supervised.model import SURE_LOGIT

    torch.manual_seed(0)
    plain = SoundMatcher(tiny_space, with_hypotheses(TINY_MODEL, 2)).eval()
    folder = save_checkpoint(tmp_path / "plain", plain, TINY_SPACE)
    conditioned = SoundMatcher(tiny_space, with_switches(TINY_MODEL, 2)).eval()
    init_weights(conditioned, folder)  # the switch map is the one weight the checkpoint lacks; it starts at zero
    assert conditioned.switch_conditioned and not plain.switch_conditioned
    logmel, note = torch.rand(2, 1, 32, 32), torch.tensor([57.0, 64.0])
    x = torch.from_numpy(np.stack([tiny_codec.canonical(tiny_space.sample(rng)) for _ in range(2)])).float()
    dims = conditioned.decoder.switch_dims
    assert [tiny_space.layout[i].name for i in conditioned.decoder.switch_params] == ["osc_1_on", "filter_1_on"]
    told = conditioned.decoder.switch_values(x)  # (2, S) of +-1
    assert torch.equal(told, torch.where(x[:, [0, 4]] > 0.5, 1.0, -1.0))
    z_plain, _ = plain.hypotheses(logmel, note)
    z, _ = conditioned.hypotheses(logmel, note, told)
    others = torch.ones(z.shape[-1], dtype=torch.bool)
    others[dims] = False
    assert torch.allclose(z[..., others], z_plain[..., others], atol=1e-6)  # a zero map changes nothing else ...
    assert torch.equal(z[..., dims], (told * SURE_LOGIT)[:, None].expand(-1, 2, -1))  # ... and the told switches are decided
    assert torch.allclose(conditioned.hypotheses(logmel, note)[0], z_plain, atol=1e-6)  # told nothing: the plain network
    half = told.clone()
    half[:, 1] = 0  # filter_1_on not told: predicted
    assert torch.allclose(conditioned.hypotheses(logmel, note, half)[0][..., dims[1]], z_plain[..., dims[1]], atol=1e-6)
    with torch.no_grad():
        conditioned.decoder.switch_proj.weight.normal_()
    on, off = torch.ones(2, 2), -torch.ones(2, 2)
    assert not torch.allclose(conditioned.hypotheses(logmel, note, on)[0][..., others], conditioned.hypotheses(logmel, note, off)[0][..., others])
    per_hypothesis = torch.stack([on, off], 1)  # (B, K, S): hypothesis 0 told "on", hypothesis 1 "off"
    z_each = conditioned.hypotheses(logmel, note, per_hypothesis)[0]
    assert torch.allclose(z_each[:, 0], conditioned.hypotheses(logmel, note, on)[0][:, 0], atol=1e-5)
    assert torch.allclose(z_each[:, 1], conditioned.hypotheses(logmel, note, off)[0][:, 1], atol=1e-5)
    assert torch.equal(conditioned.decoder.switches_of(z_each), per_hypothesis)
    with pytest.raises(ValueError, match="expected"):
        conditioned.hypotheses(logmel, note, torch.ones(2, 3))
    with pytest.raises(ValueError, match="not conditioned on on/off switches"):
        plain.hypotheses(logmel, note, told)


def test_told_switches_tell_a_share_of_the_batch_their_true_switches(tiny_space, tiny_codec, rng):
    from agents.supervised.train import told_switches

    model = SoundMatcher(tiny_space, with_switches(TINY_MODEL, 2))
    x = torch.from_numpy(np.stack([tiny_codec.canonical(tiny_space.sample(rng)) for _ in range(64)])).float()
    truth = model.decoder.switch_values(x)
    assert torch.equal(told_switches(model, x, 1.0), truth)
    assert not told_switches(model, x, 0.0).any()
    half = told_switches(model, x, 0.5, torch.Generator().manual_seed(0))
    told = half.any(1)
    assert 10 < int(told.sum()) < 54  # about half the samples ...
    assert torch.equal(half[told], truth[told])  # ... told all their switches, the rest none
    with pytest.raises(ValueError, match="switch_teacher=1.5"):
        told_switches(model, x, 1.5)


def test_training_a_switch_conditioned_model_reports_its_loss_with_switches_told(tmp_path, tiny_dataset):
    config = tiny_train_config(tiny_dataset, tmp_path / "run", model=with_switches(TINY_MODEL, 2).to_dict(), steps=2)
    train(config, log=lambda *_: None)
    metrics = read_config(tmp_path / "run" / "last")["metrics"]
    assert metrics["loss_switches_told/toggle"] < 1e-3 < metrics["loss/toggle"]  # told switches cost nothing
    model, _, _ = load_model(tmp_path / "run" / "last")
    assert model.switch_conditioned and float(model.decoder.switch_proj.weight.detach().abs().sum()) > 0  # it trained the map


OSCILLATORS = [["osc_1", "osc_2", "osc_3"]]


def test_rotation_indices_read_each_slot_from_the_next_modules_controls(core_space):
    from agents.supervised.losses import rotation_indices

    rows = rotation_indices(core_space, OSCILLATORS).numpy()
    index = core_space.index
    assert rows.shape == (3, len(core_space.parameters))
    assert np.array_equal(rows[0], np.arange(len(core_space.parameters)))  # row 0: as stored
    assert rows[1][index["osc_1_level"]] == index["osc_2_level"] and rows[1][index["osc_3_on"]] == index["osc_1_on"]
    assert rows[2][index["osc_1_wave_frame"]] == index["osc_3_wave_frame"]
    assert rows[1][index["filter_1_cutoff"]] == index["filter_1_cutoff"]  # other groups stay
    assert rotation_indices(core_space, []).shape == (1, len(core_space.parameters))
    with pytest.raises(ValueError, match="same controls"):
        rotation_indices(core_space, [["osc_1", "filter_1"]])
    with pytest.raises(ValueError, match="osc_4"):
        rotation_indices(core_space, [["osc_1", "osc_4"]])


def test_rotations_score_a_prediction_against_the_rotation_of_the_target_it_fits(core_space, core_codec, rng):
    from agents.supervised.losses import rotation_indices

    x = torch.from_numpy(np.stack([core_codec.canonical(core_space.sample(rng, prior=False)) for _ in range(4)])).float()
    turned = x[:, rotation_indices(core_space, OSCILLATORS)[1]]  # every sample's oscillators one slot on
    z = torch.stack([ideal_logits(core_space, v.numpy()) for v in turned])  # predicts the rotated preset exactly
    plain, rotated = ParameterLoss(core_space), ParameterLoss(core_space, rotations=OSCILLATORS)
    assert torch.equal(rotated.align(z, x), turned)
    exact = plain.per_sample(z, turned)["total"]
    np.testing.assert_allclose(rotated.per_sample(z, x)["total"].numpy(), exact.numpy(), rtol=1e-6)  # as good as exact
    assert (plain.per_sample(z, x)["total"] > exact + 0.1).all()  # slot by slot it is wrong
    assert torch.equal(plain.align(z, x), x)  # no rotations: the targets as stored
    z_own = torch.stack([ideal_logits(core_space, v.numpy()) for v in x])
    assert torch.equal(rotated.align(z_own, x), x)  # the identity wins where it fits
    # Hypotheses: each aligned on its own, and the spread scored against its aligned targets.
    both = torch.stack([z_own, z], 1)  # (B, 2, A): hypothesis 0 as stored, 1 rotated
    hyp = HypothesisLoss(rotated)
    per, _ = hyp.winners(both, x)
    np.testing.assert_allclose(per["total"][:, 1].numpy(), exact.numpy(), rtol=1e-6)
    spread = torch.full_like(both, -2.0)
    assert torch.allclose(hyp.spread_nll(both, spread, x)[:, 0], hyp.spread_nll(both, spread, torch.stack([x, turned], 1))[:, 0])
    assert np.isfinite(float(hyp(both, torch.zeros(4, 2), x, spread)["total"]))
