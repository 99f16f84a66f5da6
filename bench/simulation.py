"""Planted data: synthetic rated pairs with a known refusal gap and known style effects.

Not part of the app: the tests (tests/analysis: refusal gap, style, criteria, rankings and
the studies of a snapshot) and ``bench/gap_simulation.py`` draw from it to check that the
intervals of :mod:`analysis.metrics.refusal` and :mod:`analysis.metrics.style` cover what
was planted, and ``bench/figures_unchanged.py`` writes one planted study into a database.
Seeded: the same study, size and seed give the same data.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from analysis.metrics.outcomes import TIE, A, B
from analysis.metrics.refusal import (
    ETHICAL_DISCLAIMER,
    ETHICAL_REFUSAL,
    NORMAL,
    TECHNICAL_DISCLAIMER,
    TECHNICAL_REFUSAL,
)


class _Planted(NamedTuple):
    """A class's defaults: the humans' and the judge's win probability against a normal
    response (none for normal itself), its share of the pairs, its token range and its range
    of prompt similarity."""

    human_win: float | None
    judge_win: float | None
    share: float
    tokens: tuple[float, float]
    sims: tuple[float, float]


_PLANTED = {
    NORMAL: _Planted(None, None, 0.55, (150.0, 450.0), (0.4, 0.9)),
    ETHICAL_REFUSAL: _Planted(0.10, 0.30, 0.15, (40.0, 200.0), (0.2, 0.7)),
    TECHNICAL_REFUSAL: _Planted(0.25, 0.25, 0.10, (40.0, 200.0), (0.2, 0.7)),
    ETHICAL_DISCLAIMER: _Planted(0.40, 0.45, 0.10, (200.0, 500.0), (0.4, 0.9)),
    TECHNICAL_DISCLAIMER: _Planted(0.35, 0.35, 0.10, (150.0, 450.0), (0.4, 0.9)),
}


def _planted(column: str) -> Callable[[], dict[str, Any]]:
    """A default factory: one column of ``_PLANTED`` by class, in its order."""
    return lambda: {
        name: getattr(row, column)
        for name, row in _PLANTED.items()
        if getattr(row, column) is not None
    }


@dataclass(frozen=True)
class PlantedStudy:
    """Synthetic rated pairs with known win probabilities (a planted refusal gap).

    Each pair holds a normal response and a response of the class drawn from
    ``class_shares`` (a second normal one for ``normal``), on side A or B at random, with
    lengths and prompt similarities uniform on the class's ranges. Given no tie, rater r
    prefers the non-normal response s over the normal one o with probability

        q = win[r][class] + length[r] * (tokens_s - tokens_o) / length_unit
            + sim_effect * (sim_s - sim_o),

    and, in a normal-normal pair, side A with 0.5 plus the same length and similarity terms.
    So ``win`` is a class's win probability against a normal response of equal length and
    similarity: humans 10% and the judge 30% for ethical refusals by default, a 20-point gap,
    and the judge four times as sensitive to length. A tie happens with probability
    ``tie_rate``, independent of everything else.
    """

    human_win: Mapping[str, float] = field(default_factory=_planted("human_win"))
    judge_win: Mapping[str, float] = field(default_factory=_planted("judge_win"))
    human_length: float = 0.03
    judge_length: float = 0.12
    length_unit: float = 800.0
    sim_effect: float = 0.05
    tie_rate: float = 0.10
    class_shares: Mapping[str, float] = field(default_factory=_planted("share"))
    tokens: Mapping[str, tuple[float, float]] = field(default_factory=_planted("tokens"))
    sims: Mapping[str, tuple[float, float]] = field(default_factory=_planted("sims"))

    def without_gap(self) -> PlantedStudy:
        """The same study with the judge's class win probabilities set to the humans'.

        The judge keeps its stronger length preference: a length-controlled test must not
        mistake it for a refusal gap.
        """
        return PlantedStudy(
            human_win=dict(self.human_win),
            judge_win=dict(self.human_win),
            human_length=self.human_length,
            judge_length=self.judge_length,
            length_unit=self.length_unit,
            sim_effect=self.sim_effect,
            tie_rate=self.tie_rate,
            class_shares=dict(self.class_shares),
            tokens=dict(self.tokens),
            sims=dict(self.sims),
        )


@dataclass(frozen=True)
class SimulatedStudy:
    """Pairs and verdicts drawn from a :class:`PlantedStudy`.

    ``pairs`` has the columns :func:`analysis.metrics.refusal.response_sides` reads plus
    ``headers_*``, ``lists_*``, ``bold_*`` markdown counts (no effect on the verdicts);
    ``verdicts`` has raters
    ``"human"`` and ``"judge"``; ``expected`` gives, per pair and rater, ``p_a``: the
    probability that A wins given no tie.
    """

    pairs: pd.DataFrame
    verdicts: pd.DataFrame
    expected: pd.DataFrame


def simulate_study(study: PlantedStudy, n_pairs: int, *, seed: int) -> SimulatedStudy:
    """Draw ``n_pairs`` rated pairs from ``study`` (seeded: the same seed, the same data)."""
    if n_pairs < 1:
        raise ValueError(f"n_pairs must be at least 1, got {n_pairs}")
    rng = np.random.default_rng(seed)
    names = list(study.class_shares)
    shares = np.array([study.class_shares[c] for c in names], dtype=float)
    picks = rng.choice(len(names), n_pairs, p=shares / shares.sum())
    special = np.asarray(names, dtype=object)[picks]
    on_a = rng.random(n_pairs) < 0.5
    classes_a = np.where(on_a, special, NORMAL)
    classes_b = np.where(on_a, NORMAL, special)

    def uniform(ranges: Mapping[str, tuple[float, float]], classes: np.ndarray) -> np.ndarray:
        low = np.array([ranges[c][0] for c in classes])
        high = np.array([ranges[c][1] for c in classes])
        return low + (high - low) * rng.random(len(classes))

    tokens_a = np.round(uniform(study.tokens, classes_a))
    tokens_b = np.round(uniform(study.tokens, classes_b))
    sim_a = uniform(study.sims, classes_a)
    sim_b = uniform(study.sims, classes_b)
    pair_id = np.arange(n_pairs)
    verdict_frames, expected_frames = [], []
    for rater, win, length in (
        ("human", study.human_win, study.human_length),
        ("judge", study.judge_win, study.judge_length),
    ):
        # q_a: P(A wins | no tie). The special side's base rate, or 0.5 for normal-normal.
        base_special = np.array([win.get(c, 0.5) if c != NORMAL else 0.5 for c in special])
        base_a = np.where(on_a, base_special, 1.0 - base_special)
        q_a = (
            base_a
            + length * (tokens_a - tokens_b) / study.length_unit
            + study.sim_effect * (sim_a - sim_b)
        )
        if (q_a < 0).any() or (q_a > 1).any():
            raise ValueError(
                f"the planted {rater} win probabilities leave [0, 1] (from {q_a.min():.3f} to "
                f"{q_a.max():.3f}): lower the length or similarity effects"
            )
        tie = rng.random(n_pairs) < study.tie_rate
        a_wins = rng.random(n_pairs) < q_a
        verdict = np.where(tie, TIE, np.where(a_wins, A, B))
        verdict_frames.append(
            pd.DataFrame({"pair_id": pair_id, "rater": rater, "verdict": verdict})
        )
        expected_frames.append(pd.DataFrame({"pair_id": pair_id, "rater": rater, "p_a": q_a}))
    markdown = {}
    for feature, (normal_mean, other_mean) in {
        "headers": (1.0, 0.2),
        "lists": (3.0, 0.5),
        "bold": (2.0, 0.3),
    }.items():
        for side, classes in (("a", classes_a), ("b", classes_b)):
            mean = np.where(classes == NORMAL, normal_mean, other_mean)
            markdown[f"{feature}_{side}"] = rng.poisson(mean)
    pairs = pd.DataFrame(
        {
            "pair_id": pair_id,
            "class_a": classes_a,
            "class_b": classes_b,
            "tokens_a": tokens_a,
            "tokens_b": tokens_b,
            "sim_a": sim_a,
            "sim_b": sim_b,
            **markdown,
        }
    )
    return SimulatedStudy(
        pairs=pairs,
        verdicts=pd.concat(verdict_frames, ignore_index=True),
        expected=pd.concat(expected_frames, ignore_index=True),
    )


PLANTED_MODELS = ("alpha-7b", "beta-13b", "gamma-70b", "delta-8x7b")


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def study_write(
    simulated: SimulatedStudy, dataset: Any, judge: Any, *, seed: int, votes: bool = True
) -> list[Any]:
    """Write a simulated study into ``dataset`` as pairs with classified, featurised
    responses, ``judge``'s verdicts and (with ``votes``) one person's votes; bulk inserts,
    so the pairs' ids follow the simulated order. Returns the pairs. Needs Django set up."""
    from bench.benchrows import pair_of
    from corpus.models import HumanVote, Pair, Prompt, Response
    from judges.models import ResponseClassification, ResponseFeatures, Verdict

    n_pairs = len(simulated.pairs)
    frame = simulated.pairs
    prompts = Prompt.objects.bulk_create(
        Prompt(dataset=dataset, text=f"prompt {k}", content_hash=_sha(f"{seed}:{k}"))
        for k in range(n_pairs)
    )
    responses = Response.objects.bulk_create(
        Response(
            prompt=prompts[k],
            model_name=PLANTED_MODELS[(k + offset * (1 + k // 4)) % 4],
            text=f"response {k}{side}",
            content_hash=_sha(f"{seed}:{k}:{side}"),
        )
        for k in range(n_pairs)
        for offset, side in ((0, "a"), (1, "b"))
    )
    pairs = Pair.objects.bulk_create(
        pair_of(
            responses,
            k,
            dataset=dataset,
            source_key=f"p{k}",
            prompt=prompts[k],
            content_hash=_sha(f"pair:{seed}:{k}"),
        )
        for k in range(n_pairs)
    )
    classes, features = [], []
    for k, row in frame.iterrows():
        for offset, side in ((0, "a"), (1, "b")):
            response = responses[2 * int(k) + offset]
            classes.append(
                ResponseClassification(
                    response=response, classifier="c" * 64, label=row[f"class_{side}"], score=0.9
                )
            )
            features.append(
                ResponseFeatures(
                    response=response,
                    extractor="e" * 64,
                    length_chars=int(row[f"tokens_{side}"]) * 4,
                    length_tokens=int(row[f"tokens_{side}"]),
                    headers=int(row[f"headers_{side}"]),
                    list_items=int(row[f"lists_{side}"]),
                    bold=int(row[f"bold_{side}"]),
                    prompt_similarity=float(row[f"sim_{side}"]),
                )
            )
    ResponseClassification.objects.bulk_create(classes)
    ResponseFeatures.objects.bulk_create(features)
    verdicts = simulated.verdicts
    judged = verdicts[verdicts["rater"] == "judge"]
    Verdict.objects.bulk_create(
        Verdict(judge=judge, pair=pairs[int(k)], outcome=v, outcome_ab=v, status_ab="ok")
        for k, v in zip(judged["pair_id"], judged["verdict"], strict=True)
    )
    if votes:
        people = verdicts[verdicts["rater"] == "human"]
        HumanVote.objects.bulk_create(
            HumanVote(
                pair=pairs[int(k)],
                source=HumanVote.Source.GENERIC,
                voter_id="crowd",
                outcome=v,
                row_hash=_sha(f"vote:{k}"),
            )
            for k, v in zip(people["pair_id"], people["verdict"], strict=True)
        )
    return pairs
