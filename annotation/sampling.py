"""Stratified selection of pairs for an audit. Pure: no Django import.

The strata *partition* the dataset. Each pair is flagged from its judges' verdicts and its
responses' refusal classes, then placed in the first stratum of `STRATUM_PRIORITY` it qualifies
for; a pair with no flag belongs to the random control stratum. Within a stratum h of N_h
pairs a simple random sample of n_h is drawn, so every selected pair carries the exact
inclusion probability n_h / N_h and weighting labels by its inverse estimates dataset-wide
figures (a stratified design with known probabilities, not a convenience sample).

The drift stratum holds the pairs whose combined verdict (A / tie / B; both_bad counts as a
tie) differs between two judge versions the lead chose (`is_flipped`): the cases a new
version changed, sent to people. It comes first when chosen, so it holds exactly the flipped
pairs, and the sum of 1/p over its items estimates their number; a pair either version has no
combined verdict on is not flipped (nothing is known to have changed). Without two versions
chosen it is empty.

Priority puts the rare strata first (responses the refusal classifier is unsure of, then ethics
refusals, then technical refusals, then the low-margin cases) so a pair that is both a refusal
and a close call is not lost to the much larger low-margin pool. The uncertain-class stratum
comes first so that it holds exactly the pairs with an `uncertain` response: the audit spends
labels where the instrument is unsure, and people's classes of those responses (when the audit
asks for them) correct the instrument where it is weakest.

A pair is an ethics refusal when either response's top class is an ethics class or its
ethical-refusal probability reaches `ETHICS_PROBABILITY` (a full refusal that the classifier
calls a disclaimer, the dominant error on unseen models, still reaches the stratum).

Sampling draws from candidates sorted by the pair's source key with a
generator seeded from (seed, stratum): the same data and seed give the same audit, and changing
one stratum's quota does not reshuffle the others.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

LOW_MARGIN = "low_margin"
ETHICS_REFUSAL = "ethics_refusal"
TECHNICAL_REFUSAL = "technical_refusal"
UNCERTAIN_CLASS = "uncertain_class"
DRIFT = "drift"
RANDOM = "random"

STRATUM_PRIORITY: tuple[str, ...] = (
    DRIFT,
    UNCERTAIN_CLASS,
    ETHICS_REFUSAL,
    TECHNICAL_REFUSAL,
    LOW_MARGIN,
)
ALL_STRATA: tuple[str, ...] = (*STRATUM_PRIORITY, RANDOM)

ETHICS_CLASSES = frozenset({"ethical_refusal", "ethical_disclaimer"})
TECHNICAL_CLASSES = frozenset({"technical_refusal", "technical_disclaimer"})
# P(ethical_refusal) at or above this on either response flags the pair as an ethics refusal.
ETHICS_PROBABILITY = 0.3


class SelectionError(ValueError):
    """A selection that cannot be drawn; `field` names the setting to change."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class JudgeCall:
    """What the low-margin rule needs from one judge's verdict on one pair."""

    outcome: str | None
    consistent: bool | None
    margin: float | None


@dataclass(frozen=True)
class PairSignals:
    pair_id: int
    sort_key: str
    ethics: bool = False
    technical: bool = False
    low_margin: bool = False
    uncertain: bool = False
    flipped: bool = False


@dataclass(frozen=True)
class ResponseSignal:
    """What the refusal strata need from one response's classification."""

    label: str
    ethical_refusal_probability: float | None = None
    uncertain: bool = False


@dataclass(frozen=True)
class Drawn:
    pair_id: int
    stratum: str
    inclusion_probability: float
    position: int


def is_low_margin(calls: Sequence[JudgeCall], *, margin_threshold: float | None) -> bool:
    """A close or unstable call: a small margin, a flip under swapped order, or a split panel."""
    for call in calls:
        if call.consistent is False:
            return True
        close = margin_threshold is not None and call.margin is not None
        if close and abs(call.margin) < margin_threshold:  # type: ignore[arg-type,operator]
            return True
    outcomes = {call.outcome for call in calls if call.outcome}
    return len(outcomes) > 1


def is_flipped(before: str | None, after: str | None) -> bool:
    """Did the combined verdict change between two judge versions? A, B and tie (both_bad is
    a tie, as S1 codes it); a missing verdict on either side is no known change."""
    if before is None or after is None:
        return False

    def s1(outcome: str) -> str:
        return "tie" if outcome == "both_bad" else outcome

    return s1(before) != s1(after)


def refusal_flags(classes: Iterable[str]) -> tuple[bool, bool]:
    """(ethics, technical) for the refusal classes of both responses of a pair."""
    found = set(classes)
    return bool(found & ETHICS_CLASSES), bool(found & TECHNICAL_CLASSES)


def response_flags(
    responses: Iterable[ResponseSignal], *, ethics_probability: float = ETHICS_PROBABILITY
) -> tuple[bool, bool, bool]:
    """(ethics, technical, uncertain) for the classifications of both responses of a pair.

    Ethics: a top class in ETHICS_CLASSES, or P(ethical_refusal) >= `ethics_probability`.
    Uncertain: the classifier marked either response `uncertain`."""
    ethics = technical = uncertain = False
    for response in responses:
        probability = response.ethical_refusal_probability
        ethics = ethics or response.label in ETHICS_CLASSES
        ethics = ethics or (probability is not None and probability >= ethics_probability)
        technical = technical or response.label in TECHNICAL_CLASSES
        uncertain = uncertain or response.uncertain
    return ethics, technical, uncertain


def stratum_of(signals: PairSignals) -> str:
    flags = {
        DRIFT: signals.flipped,
        UNCERTAIN_CLASS: signals.uncertain,
        ETHICS_REFUSAL: signals.ethics,
        TECHNICAL_REFUSAL: signals.technical,
        LOW_MARGIN: signals.low_margin,
    }
    for stratum in STRATUM_PRIORITY:
        if flags[stratum]:
            return stratum
    return RANDOM


def partition(signals: Iterable[PairSignals]) -> dict[str, list[PairSignals]]:
    """Each pair in exactly one stratum, each stratum sorted by source key."""
    strata: dict[str, list[PairSignals]] = {name: [] for name in ALL_STRATA}
    for item in signals:
        strata[stratum_of(item)].append(item)
    for members in strata.values():
        members.sort(key=lambda s: (s.sort_key, s.pair_id))
    return strata


def pools(strata: Mapping[str, Sequence[PairSignals]], *, drift: bool) -> dict[str, int]:
    """Pairs per stratum; the drift stratum is listed only when two versions were chosen
    (otherwise it does not exist for this audit, and its pool is no 0 to record)."""
    return {name: len(members) for name, members in strata.items() if drift or name != DRIFT}


def resolve_quotas(
    *, size: int, quotas: Mapping[str, int | None], available: Mapping[str, int]
) -> dict[str, int]:
    """Quotas per stratum that sum to `size`; the random control takes what is left.

    A quota over the stratum's available pairs is refused, not silently shrunk: the lead
    sees the counts before creating and decides where the missing items should come from.
    """
    if size < 1:
        raise SelectionError("size", "must be at least 1")
    unknown = sorted(set(quotas) - set(ALL_STRATA))
    if unknown:
        raise SelectionError(
            "quotas", f"unknown stratum {unknown[0]!r}; use one of {', '.join(ALL_STRATA)}"
        )
    resolved: dict[str, int] = {}
    for name in STRATUM_PRIORITY:
        value = quotas.get(name) or 0
        if value < 0:
            raise SelectionError(name, f"quota {value} is negative")
        resolved[name] = value
    fixed = sum(resolved.values())
    random_quota = quotas.get(RANDOM)
    if random_quota is None:
        random_quota = size - fixed
        if random_quota < 0:
            raise SelectionError(
                "size", f"the strata quotas add up to {fixed}, more than the size {size}"
            )
    elif fixed + random_quota != size:
        raise SelectionError(
            "size", f"the quotas add up to {fixed + random_quota}, not the size {size}"
        )
    if random_quota < 0:
        raise SelectionError(RANDOM, f"quota {random_quota} is negative")
    resolved[RANDOM] = random_quota
    for name in ALL_STRATA:
        have = available.get(name, 0)
        if resolved[name] > have:
            raise SelectionError(
                name, f"quota {resolved[name]} but only {have} pairs are available in this stratum"
            )
    return resolved


def draw(
    strata: Mapping[str, Sequence[PairSignals]], quotas: Mapping[str, int], *, seed: int
) -> list[Drawn]:
    """A seeded simple random sample per stratum, then a seeded shuffle into serving order."""
    chosen: list[tuple[int, str, float]] = []
    for name in ALL_STRATA:
        members = strata.get(name, ())
        wanted = quotas.get(name, 0)
        if wanted <= 0 or not members:
            continue
        rng = random.Random(f"{seed}:{name}")
        sample = rng.sample(range(len(members)), wanted)
        probability = wanted / len(members)
        chosen.extend((members[i].pair_id, name, probability) for i in sorted(sample))
    return _placed(chosen, key=f"{seed}:positions", first_position=0)


def _placed(
    chosen: Sequence[tuple[int, str, float]], *, key: str, first_position: int
) -> list[Drawn]:
    """The chosen (pair, stratum, probability) rows in a seeded shuffle, numbered from
    `first_position`: the order items are served in."""
    order = list(range(len(chosen)))
    random.Random(key).shuffle(order)
    return [
        Drawn(
            pair_id=chosen[index][0],
            stratum=chosen[index][1],
            inclusion_probability=chosen[index][2],
            position=first_position + offset,
        )
        for offset, index in enumerate(order)
    ]


# --- Growing an audit -------------------------------------------------------------------------
#
# Adding n2 items to a stratum of N pairs that already gave n1: the new ones are a simple
# random sample of the N - n1 pairs not yet drawn. The union of the two draws is then a simple
# random sample of n1 + n2 from the N: for any set S of n1 + n2 pairs,
#
#     P(union = S) = C(n1 + n2, n1) / (C(N, n1) * C(N - n1, n2)) = 1 / C(N, n1 + n2),
#
# (choose which n1 of S came first; both draws are uniform), the same for every S. So every
# pair of the stratum, old or new, has inclusion probability (n1 + n2) / N, and the audit
# stays a stratified design with known probabilities. A stratum with no pairs left gives
# nothing more; its share goes to the strata that still have some.


def allocate(n: int, *, quotas: Mapping[str, int], room: Mapping[str, int]) -> dict[str, int]:
    """Split `n` new items over the strata with a quota, in proportion to the quotas (largest
    remainder, ties by priority order), never more than a stratum's `room`; what a full
    stratum cannot take goes to the others in the same proportions. Raises SelectionError
    ("n") when the strata have fewer than `n` pairs left in all."""
    if n < 1:
        raise SelectionError("n", "add at least 1 item")
    strata = [name for name in ALL_STRATA if quotas.get(name, 0) > 0]
    left = sum(max(0, room.get(name, 0)) for name in strata)
    if n > left:
        raise SelectionError(
            "n",
            f"{n} items asked for, but this audit's strata have only {left} pairs left"
            + (": every one of them is in the audit already" if left == 0 else ""),
        )
    added = dict.fromkeys(strata, 0)
    wanted = n
    while wanted:
        open_strata = [name for name in strata if room.get(name, 0) > added[name]]
        weight = sum(quotas[name] for name in open_strata)
        shares = {name: wanted * quotas[name] / weight for name in open_strata}
        given = {name: int(shares[name]) for name in open_strata}
        rest = wanted - sum(given.values())
        order = sorted(open_strata, key=lambda name: -(shares[name] - given[name]))
        for name in order[:rest]:
            given[name] += 1
        for name in open_strata:
            take = min(given[name], room[name] - added[name])
            added[name] += take
            wanted -= take
    return {name: count for name, count in added.items() if count}


def draw_more(
    strata: Mapping[str, Sequence[PairSignals]],
    *,
    drawn: Mapping[str, Iterable[int]],
    added: Mapping[str, int],
    seed: int,
    round_: int,
    first_position: int,
) -> list[Drawn]:
    """Draw `added[stratum]` more pairs from each stratum's pairs not in `drawn[stratum]`, a
    seeded simple random sample (seeded by seed, stratum and round, so growing the same audit
    the same way gives the same items), and give every item of a grown stratum, old and new,
    its new inclusion probability (n1 + n2) / N (see above). Returns the new items, shuffled
    into positions from `first_position`; the caller updates the old items' probabilities
    with `grown_probabilities`."""
    chosen: list[tuple[int, str, float]] = []
    for name in ALL_STRATA:
        wanted = added.get(name, 0)
        if wanted <= 0:
            continue
        members = strata.get(name, ())
        taken = set(drawn.get(name, ()))
        remaining = [member for member in members if member.pair_id not in taken]
        if wanted > len(remaining):
            raise SelectionError(name, f"{wanted} more asked for, {len(remaining)} left")
        rng = random.Random(f"{seed}:{name}:grow{round_}")
        sample = rng.sample(range(len(remaining)), wanted)
        probability = (len(taken) + wanted) / len(members)
        chosen.extend((remaining[i].pair_id, name, probability) for i in sorted(sample))
    return _placed(chosen, key=f"{seed}:positions:grow{round_}", first_position=first_position)


def grown_probabilities(pools: Mapping[str, int], quotas: Mapping[str, int]) -> dict[str, float]:
    """The inclusion probability of every item of each stratum: quota / pool."""
    return {name: quotas[name] / pools[name] for name in quotas if quotas[name] and pools[name]}
