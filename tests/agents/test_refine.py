import numpy as np

from agents.refine import refine
from vital_gym.render import Renderer
from vital_gym.rewards import MultiResolutionSTFTDistance


def test_cmaes_moves_toward_a_target_within_its_budget(tiny_space, tiny_codec, short_render):
    renderer = Renderer(short_render)
    rng = np.random.default_rng(7)
    while True:  # an audible target preset
        truth = tiny_codec.canonical(tiny_space.sample(rng))
        target = renderer.render(tiny_codec.to_preset(truth))
        if target.status.ok:
            break
    start = truth.copy()
    for name in ("filter_1_cutoff", "osc_1_wave_frame", "env_1_release"):
        start[tiny_space.index[name]] = 1.0 - truth[tiny_space.index[name]]
    result = refine(target.audio, start, tiny_codec, renderer, 60, short_render.velocity, budget=30, seed=0)
    assert result.renders <= 30 and len(result.history) >= 2
    assert result.distance <= result.start_distance
    assert result.gain > 0  # deterministic renders and seed: this start is improvable
    # Discrete parameters and routing stay as they started.
    discrete = [i for i, p in enumerate(tiny_space.parameters) if p.is_discrete]
    assert np.array_equal(result.x[discrete], tiny_codec.canonical(start)[discrete])


def test_a_known_start_distance_spends_no_render_on_the_start(tiny_space, tiny_codec, short_render):
    renderer = Renderer(short_render)
    start = tiny_codec.canonical(tiny_space.defaults())
    target = renderer.render(tiny_codec.to_preset(tiny_space.sample(np.random.default_rng(3))))
    result = refine(target.audio, start, tiny_codec, renderer, 60, short_render.velocity, budget=6, seed=0, start_distance=123.0)
    assert result.start_distance == 123.0 and result.renders == 6
    assert result.distance < 123.0  # every candidate beats a start said to be this far
    # It carries the best's render, the one its distance was measured on.
    assert result.render.preset.settings["filter_1_cutoff"] == tiny_codec.to_preset(result.x).settings["filter_1_cutoff"]
    assert MultiResolutionSTFTDistance().distance(result.render.audio, target.audio) == result.distance


def test_renders_side_by_side_give_the_same_search(tiny_space, tiny_codec, short_render):
    """Each generation is rendered on as many threads as renderers are given; exact renders, same result."""
    target = Renderer(short_render).render(tiny_codec.to_preset(tiny_space.sample(np.random.default_rng(5)))).audio
    start = tiny_codec.canonical(tiny_space.defaults())
    one = refine(target, start, tiny_codec, Renderer(short_render), 60, short_render.velocity, budget=12, seed=1)
    two = refine(target, start, tiny_codec, [Renderer(short_render) for _ in range(2)], 60, short_render.velocity, budget=12, seed=1)
    assert one.history == two.history and np.array_equal(one.x, two.x)


def test_screened_search_reports_an_exact_distance_and_never_a_worse_one(tiny_space, tiny_codec, short_render):
    from agents.match import candidate_renderers

    exact = Renderer(short_render)
    target = exact.render(tiny_codec.to_preset(tiny_space.sample(np.random.default_rng(6)))).audio
    start = tiny_codec.canonical(tiny_space.defaults())
    result = refine(target, start, tiny_codec, candidate_renderers(short_render), 60, short_render.velocity, budget=12, seed=0, exact=exact)
    again = Renderer(short_render).render(tiny_codec.to_preset(result.x), 60, short_render.velocity).audio
    assert result.distance == MultiResolutionSTFTDistance().distance(again, target)
    assert result.distance <= result.start_distance
    if result.distance < result.start_distance:  # the render it carries is that exact one
        assert np.array_equal(result.render.audio, again)
    else:
        assert result.render is None


def test_a_start_rendered_here_comes_back_with_its_render_when_nothing_beats_it(tiny_space, tiny_codec, short_render):
    """With no start distance given the start is rendered; if the search finds nothing closer, the result
    still carries a render (the caller keeps it, as vital-gym match does from a library preset)."""
    target_x = tiny_space.sample(np.random.default_rng(3))
    renderer = Renderer(short_render)
    target = renderer.render(tiny_codec.to_preset(target_x)).audio
    result = refine(target, target_x, tiny_codec, renderer, 60, 0.7, budget=4, seed=0, exact=Renderer(short_render))
    assert result.distance <= result.start_distance < 1e-6 and result.render is not None
    np.testing.assert_allclose(result.render.audio, target, atol=1e-5)
