"""Identities of a head: MakeHuman's macro rule (sex, age, ethnicity, muscle, weight) plus shape targets.

MakeHuman blends its macro targets with products of piecewise-linear weights: a sex value 0..1 mixes
female/male, an age value 0..1 mixes young (25 years, at 0.5) and old (90 years, at 1.0), ethnicities are a
mix summing to 1, and muscle and weight values 0..1 mix min / average / max around 0.5. The head asset stores
each macro target as a delta; an identity's coefficient on it is its macro weight minus the default
character's, so coefficients of all zero give the neutral. Children and babies are left out: the corpus
speakers are adults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

ETHNICITIES = ("african", "asian", "caucasian")
SEXES = ("female", "male")
AGES = ("young", "old")
LEVELS = {"muscle": ("minmuscle", "averagemuscle", "maxmuscle"), "weight": ("minweight", "averageweight",
                                                                            "maxweight")}


@dataclass(frozen=True)
class MacroSettings:
    sex: float = 0.5  # 0 female ... 1 male
    age: float = 0.5  # 0.5 = 25 years ... 1.0 = 90 years
    african: float = 1 / 3
    asian: float = 1 / 3
    caucasian: float = 1 / 3
    muscle: float = 0.5
    weight: float = 0.5


DEFAULT_MACRO = MacroSettings()


def macro_target_names() -> list[str]:
    """The macro targets the head carries, in a fixed order."""
    names = [f"{e}-{s}-{a}" for e in ETHNICITIES for s in SEXES for a in AGES]
    names += [f"universal-{s}-{a}-{m}-{w}" for s in SEXES for a in AGES for m in LEVELS["muscle"]
              for w in LEVELS["weight"]]
    return names


def _three_level(value: float) -> tuple[float, float, float]:
    """min / average / max weights of a 0..1 value with average at 0.5 (MakeHuman's muscle and weight)."""
    if value < 0.5:
        return 1.0 - value / 0.5, value / 0.5, 0.0
    return 0.0, 1.0 - (value - 0.5) / 0.5, (value - 0.5) / 0.5


def macro_weights(m: MacroSettings) -> dict[str, float]:
    """Weight of each macro target for settings `m` (MakeHuman's product rule, adults only)."""
    if not 0.5 <= m.age <= 1.0:
        raise ValueError(f"age must be between 0.5 (25 years) and 1.0 (90 years), got {m.age}.")
    sex = {"female": 1.0 - m.sex, "male": m.sex}
    age = {"young": 1.0 - (m.age - 0.5) / 0.5, "old": (m.age - 0.5) / 0.5}
    total = m.african + m.asian + m.caucasian
    eth = {e: getattr(m, e) / total for e in ETHNICITIES}
    muscle = dict(zip(LEVELS["muscle"], _three_level(m.muscle), strict=True))
    weight = dict(zip(LEVELS["weight"], _three_level(m.weight), strict=True))
    out = {f"{e}-{s}-{a}": eth[e] * sex[s] * age[a] for e in ETHNICITIES for s in SEXES for a in AGES}
    for s in SEXES:
        for a in AGES:
            for mu, wm in muscle.items():
                for we, ww in weight.items():
                    out[f"universal-{s}-{a}-{mu}-{we}"] = sex[s] * age[a] * wm * ww
    return out


@dataclass(frozen=True)
class Identity:
    """One speaker's face: macro settings plus a value -1..1 for each shape target."""

    macro: MacroSettings
    shapes: dict[str, float]

    def to_json(self) -> dict:
        return {"macro": {k: round(v, 4) for k, v in asdict(self.macro).items()},
                "shapes": {k: round(v, 4) for k, v in self.shapes.items()}}

    def coefficients(self, identity_names: Sequence[str]) -> np.ndarray:
        """(I,) coefficients on a head's identity targets (macro/* relative to the default character)."""
        weights, default = macro_weights(self.macro), macro_weights(DEFAULT_MACRO)
        out = np.zeros(len(identity_names), dtype=np.float32)
        for i, name in enumerate(identity_names):
            group, _, target = name.partition("/")
            if group == "macro":
                out[i] = weights.get(target, 0.0) - default.get(target, 0.0)
            else:
                out[i] = self.shapes.get(name, 0.0)
        return out


def random_identity(rng: np.random.Generator, identity_names: Sequence[str], female: bool | None = None,
                    shape_spread: float = 0.35) -> Identity:
    """A plausible adult: sex mostly one side, 25-70 years, mixed ancestry, and small shape-target values.

    Opposite targets (…-incr / …-decr, …-up / …-down) are drawn as one signed value so they never fight.
    """
    sex = float(rng.uniform(0.0, 0.3) if female else rng.uniform(0.7, 1.0)) if female is not None \
        else float(rng.uniform(0.0, 1.0))
    mix = rng.dirichlet((0.7, 0.7, 0.7))
    macro = MacroSettings(sex=sex, age=float(rng.uniform(0.5, 0.85)), african=float(mix[0]),
                          asian=float(mix[1]), caucasian=float(mix[2]), muscle=float(rng.uniform(0.25, 0.75)),
                          weight=float(rng.uniform(0.25, 0.8)))
    shapes: dict[str, float] = {}
    drawn: dict[str, float] = {}
    for name in identity_names:
        if name.startswith("macro/"):
            continue
        stem, sign = _axis(name)
        if stem not in drawn:
            drawn[stem] = float(np.clip(rng.normal(0.0, shape_spread), -1.0, 1.0))
        value = drawn[stem] * sign
        if sign == 0:  # a target with no opposite: use it one way only
            value = abs(drawn[stem])
        if value > 0:
            shapes[name] = value
    return Identity(macro, shapes)


_OPPOSITES = (("-incr", "-decr"), ("-up", "-down"), ("-in", "-out"), ("-forward", "-backward"),
              ("-convex", "-concave"), ("-compress", "-uncompress"))


def _axis(name: str) -> tuple[str, int]:
    """A shape target's axis stem and side: +1 / -1 for a pair of opposites, 0 for a lone target."""
    for plus, minus in _OPPOSITES:
        if name.endswith(minus):
            return name[: -len(minus)], -1
        if name.endswith(plus):
            return name[: -len(plus)], 1
    return name, 0
