"""Inference-time refinement through the real synth: CMA-ES from a prediction, with a render budget.

A network's prediction is a good start but not the optimum of the spectral distance; Vita can render any
candidate, so a gradient-free search improves it. :func:`refine` runs CMA-ES (pycma, bounded to the unit
cube) over the *continuous* parameters of the space (discrete ones and the modulation routing stay as
predicted), each candidate costing one render, and returns the best vector seen, never worse than the
start.

Each generation's candidates are rendered side by side, one thread per renderer given (Vita renders
outside the GIL). Renderers that rank on approximate renders (``Matcher``'s screening renderers) are
given with an ``exact`` renderer: the best found is then rendered exactly and kept only if that exact
distance beats the start's.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from vital_gym.params import Kind
from vital_gym.preset import PresetCodec
from vital_gym.render import Renderer, RenderResult, side_by_side
from vital_gym.rewards import MultiResolutionSTFTDistance


@dataclass
class RefineResult:
    x: np.ndarray  # the best parameter vector
    distance: float  # its spectral distance to the target
    start_distance: float
    renders: int
    history: list[float] = field(default_factory=list)  # best distance after each generation
    render: RenderResult | None = None  # ``x``'s render (exact with ``exact``); None if ``x`` is a start whose distance was given

    @property
    def gain(self) -> float:
        """How much the distance fell, as a fraction of the start's."""
        return (self.start_distance - self.distance) / self.start_distance if self.start_distance > 0 else 0.0


def refine(
    target: np.ndarray,
    x0: np.ndarray,
    codec: PresetCodec,
    renderer: Renderer | Sequence[Renderer],
    midi_note: int,
    velocity: float,
    budget: int = 200,
    sigma: float = 0.1,
    seed: int = 0,
    start_distance: float | None = None,
    exact: Renderer | None = None,
    name: str = "vital-gym",
) -> RefineResult:
    """Search around ``x0`` for ``budget`` renders; ``target`` is ``(channels, samples)`` at the render rate.

    ``renderer``: one, or several to render each generation on as many threads. ``start_distance``: the
    caller's distance of ``x0``'s render, when it has one (exact, if ``exact`` is given); the search then
    spends no render on the start point. ``exact``: re-render the best candidate on it (one more render,
    not counted in ``renders``) and report that distance. The result carries the best's render (the exact
    one with ``exact``), so a caller need not render it again. ``name``: the presets' name.
    """
    import cma

    if budget < 1:
        raise ValueError(f"budget={budget}: give at least one render")
    space = codec.space
    free = np.array([i for i, p in enumerate(space.parameters) if p.kind is Kind.CONTINUOUS and not p.name.startswith("mod_")])
    distance = MultiResolutionSTFTDistance()
    distance.set_target(target)

    renderers = [renderer] if isinstance(renderer, Renderer) else list(renderer)

    def scored(on: Renderer, x: np.ndarray) -> tuple[RenderResult, float]:
        result = on.render(codec.to_preset(x, name=name), midi_note, velocity)
        return result, distance(result.audio) if result.status.finite else float("inf")

    x0 = codec.canonical(x0)
    best_x, start_render = x0, None
    if start_distance is None:  # the start rendered here: its render is the result's if nothing beats it
        (start_render, best_d), renders = scored(exact or renderers[0], x0), 1
    else:
        best_d, renders = float(start_distance), 0
    start, history, best_render = best_d, [best_d], start_render
    if len(free) == 0 or renders >= budget:
        return RefineResult(best_x, best_d, start, renders, history)
    es = cma.CMAEvolutionStrategy(
        np.clip(x0[free], 0.0, 1.0).astype(float),
        sigma,
        {"bounds": [0.0, 1.0], "seed": seed + 1, "verbose": -9, "popsize": max(4, min(12, 4 + int(3 * np.log(len(free)))))},
    )
    with ThreadPoolExecutor(len(renderers)) as pool:
        while renders < budget and not es.stop():
            candidates = es.ask()
            xs = []
            for c in candidates[: budget - renders]:  # the budget may end mid-generation
                x = x0.copy()
                x[free] = np.clip(c, 0.0, 1.0)
                xs.append(x)
            results = side_by_side(renderers, xs, scored, pool)
            scores = [d for _, d in results]
            renders += len(xs)
            for x, (result, d) in zip(xs, results):
                if d < best_d:
                    best_x, best_d, best_render = x, d, result
            history.append(best_d)
            if len(xs) < len(candidates):
                break  # keep the best seen, skip the update
            es.tell(candidates, [d if np.isfinite(d) else 1e6 for d in scores])
    if exact is not None and best_x is not x0:
        best_render, best_d = scored(exact, best_x)
        if not best_d < start:
            best_x, best_d, best_render = x0, start, start_render
    return RefineResult(best_x, best_d, start, renders, history, best_render)
