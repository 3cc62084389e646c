import numpy as np
import pytest
import torch

from vital_gym.rewards import (
    CLAP_CHECKPOINT_ENV,
    ClapEmbedder,
    ClapUnavailable,
    MultiResolutionSTFTDistance,
    Reward,
    RewardConfig,
)


def _noise(seed, shape=(1, 22050), scale=0.1):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(np.float32)


@pytest.mark.parametrize("fft_sizes", [(64, 128, 256, 512, 1024, 2048), (512, 1024)])
@pytest.mark.parametrize("channels", [1, 2])
def test_distance_equals_auraloss(fft_sizes, channels):
    import auraloss

    reference = auraloss.freq.MultiResolutionSTFTLoss(
        fft_sizes=list(fft_sizes),
        hop_sizes=[n // 4 for n in fft_sizes],
        win_lengths=list(fft_sizes),
        w_sc=0.0,
        w_log_mag=1.0,
        w_lin_mag=1.0,
    )
    pred, target = _noise(1, (channels, 22050)), _noise(2, (channels, 22050), 0.3)
    ours = MultiResolutionSTFTDistance(fft_sizes)
    ours.set_target(target)
    expected = float(reference(torch.from_numpy(pred)[None], torch.from_numpy(target)[None]))
    assert ours(pred) == pytest.approx(expected, rel=1e-5)
    assert ours.distance(pred, target) == pytest.approx(expected, rel=1e-5)


def test_distance_is_zero_for_identical_and_bounded_for_silence():
    target = _noise(3)
    d = MultiResolutionSTFTDistance()
    d.set_target(target)
    assert d(target) == pytest.approx(0.0, abs=1e-7)
    silent = d(np.zeros_like(target))
    assert np.isfinite(silent) and 0 < silent < 50  # no spectral-convergence term to explode


def test_distance_rejects_mismatched_shapes():
    d = MultiResolutionSTFTDistance()
    d.set_target(_noise(0))
    with pytest.raises(ValueError, match="shape"):
        d(_noise(0, (1, 100)))


def test_unknown_reward_setting():
    with pytest.raises(ValueError, match="unknown reward settings"):
        RewardConfig.from_dict({"clap": 1.0})


def test_clap_weight_without_checkpoint_says_how_to_fix(monkeypatch):
    monkeypatch.delenv(CLAP_CHECKPOINT_ENV, raising=False)
    with pytest.raises(ClapUnavailable, match=f"clap_checkpoint.*{CLAP_CHECKPOINT_ENV}.*clap_download.*clap_weight': 0"):
        Reward(RewardConfig(clap_weight=0.5), sample_rate=44100)


def test_missing_checkpoint_file(tmp_path):
    with pytest.raises(ClapUnavailable, match="does not exist"):
        ClapEmbedder.from_config(RewardConfig(clap_weight=1.0, clap_checkpoint=str(tmp_path / "none.pt")))


@pytest.mark.slow
def test_clap_embeddings_shape_norm_and_determinism(random_clap):
    audio = np.stack([_noise(s, (1, 44100)) for s in range(3)])  # three 1 s clips at 44.1 kHz
    e = random_clap.embed(audio, 44100)
    assert e.shape == (3, 512) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(random_clap.embed(audio, 44100), e, atol=1e-6)
    long_clip = _noise(9, (1, 44100 * 12))  # over 10 s: cut to the first 10 s, not a random crop
    np.testing.assert_allclose(random_clap.embed(long_clip, 44100), random_clap.embed(long_clip, 44100), atol=1e-6)


@pytest.mark.slow
def test_clap_checkpoint_loads_audio_weights(random_clap, tmp_path):
    """A checkpoint laid out like laion-clap's (a 'state_dict' with 'module.' prefixes) loads offline."""
    state = {"module." + k: v for k, v in random_clap.model.state_dict().items()}
    path = tmp_path / "clap.pt"
    torch.save({"epoch": 1, "state_dict": state}, path)
    loaded = ClapEmbedder.from_config(RewardConfig(clap_weight=1.0, clap_checkpoint=str(path)), device="cpu")
    audio = _noise(5, (1, 44100))
    np.testing.assert_allclose(loaded.embed(audio, 44100), random_clap.embed(audio, 44100), atol=1e-5)

    del state["module.audio_projection.0.weight"]
    torch.save({"state_dict": state}, path)
    with pytest.raises(ClapUnavailable, match="does not fit"):
        ClapEmbedder.from_config(RewardConfig(clap_weight=1.0, clap_checkpoint=str(path)), device="cpu")


@pytest.mark.slow
def test_reward_combines_terms_and_embeds_the_target_once(random_clap):
    reward = Reward(RewardConfig(spectral_weight=2.0, clap_weight=0.5), 44100, clap=random_clap)
    calls = []
    original = random_clap.embed
    random_clap.embed = lambda audio, sr: calls.append(1) or original(audio, sr)
    try:
        target = _noise(1, (1, 22050))
        reward.set_target(target)
        terms = [reward(_noise(s, (1, 22050))) for s in (2, 3)]
    finally:
        random_clap.embed = original
    assert len(calls) == 3  # target once, then one per render
    for t in terms:
        assert t.score == pytest.approx(-2.0 * t.spectral_distance + 0.5 * t.clap_similarity)
        assert -1.0 <= t.clap_similarity <= 1.0
        assert set(t.as_info()) == {"score", "spectral_distance", "clap_similarity"}
