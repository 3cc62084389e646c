"""Where an episode starts from: a trained matcher's choice for its target.

``VitalMatchEnv(start=...)`` takes a callable from a :class:`~vital_gym.targets.Target` to a parameter
vector. A refine episode's first preset is that vector; a one-shot episode's reward is measured as the
improvement over that vector's score (a baseline that already knows the target). :class:`MatcherStart`
is such a callable for a trained model:

* ``choice="closest"``: the closest by rendering of the model's hypotheses (and ``draws`` drawn presets
  of each), where ``vital-gym match --refine`` starts its search (one render per candidate);
* ``choice="top"``: the model's best-scored hypothesis, no render: the supervised model's own choice,
  which is exactly what a :class:`~agents.ppo.policy.SoundMatcherPolicy` warm-started from the same
  model acts before any update.

Either way the vector is in the model's space over its base preset (the matcher's library and dataset
samples are left out: their presets are not the env's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vital_gym.targets import Target

START_CHOICES = ("closest", "top")


@dataclass
class MatcherStart:
    """A trained model's choice for a target, played at ``midi_note`` and ``velocity`` (see the module).

    Picklable: each process (a ``SubprocVecEnv`` worker) loads the model once, on its first episode."""

    checkpoint: str
    midi_note: int = 60
    velocity: float = 0.7
    draws: int = 0
    choice: str = "closest"
    _matcher: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.choice not in START_CHOICES:
            raise ValueError(f"choice={self.choice!r}: one of {START_CHOICES}")

    def __call__(self, target: Target) -> np.ndarray:
        if self._matcher is None:
            from agents.match import Matcher

            self._matcher = Matcher(self.checkpoint, render_workers=1, neighbours=False)
        if self.choice == "top":
            return self._matcher.predict(target.audio, self.midi_note)
        for renderer in self._matcher.candidate_renderers:
            renderer.start_fresh()  # the start depends on the target alone, not on the episodes before
        return self._matcher.closest(target.audio, self.midi_note, self.velocity, draws=self.draws)[0]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_matcher": None}  # the model is loaded again where the start is used
