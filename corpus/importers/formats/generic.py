"""Tribunal's own import schema: one row per pair, with optional votes and verdicts.

Read from JSON lines, a JSON array, CSV or Parquet. The columns and nested keys are listed once
in `corpus.importers.schema` (the export writes the same list) and documented in
`docs/import-formats.md`; unknown ones are refused so a typo never drops data silently.
A row without any text column refers to a pair by `pair_id` alone (created by an earlier row,
an earlier file of the same command, or an earlier import into the dataset), which is how
votes and verdicts arriving in separate files join their pairs. Several votes and verdicts per
pair go in `votes` / `verdicts` lists (in CSV, as JSON text), which is what the calibration-set
export writes, so an export imports back as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from corpus.importers import schema
from corpus.importers.fields import MISSING, Checker
from corpus.importers.formats.base import ParseContext, per_item
from corpus.importers.readers import describe
from corpus.importers.records import (
    OUTCOMES,
    PARSE_STATUSES,
    VOTE_SOURCES,
    JudgeRef,
    PairContent,
    Row,
    RowError,
    VerdictRecord,
    Vote,
    normalise_outcome,
)

VOTE_KEYS = frozenset(schema.VOTE_KEYS)
VERDICT_KEYS = frozenset(schema.VERDICT_KEYS)
T = TypeVar("T")
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def parse(ctx: ParseContext) -> Iterator[Row | RowError]:
    return per_item(ctx.source, _row, required=("pair_id",), allowed=schema.FIELDS)


def _row(c: Checker) -> Iterator[Row | RowError]:
    key = c.key("pair_id")
    pair = _pair(c, key)
    votes = _votes(c)
    verdicts = _verdicts(c)
    if c.errors or key is None:
        yield from c.errors
        return
    yield Row(c.item.line, key, "pair_id", pair, votes, verdicts)


def _boolean(c: Checker, name: str, default: bool) -> bool:
    value = c.raw(name, None)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    c.error(name, f"expected true or false, got {describe(value)}")
    return default


def _pair(c: Checker, key: str | None) -> PairContent | None:
    given = [name for name in schema.TEXT_FIELDS if c.has(name) and c.data[name] is not None]
    if not given and not c.has("has_text"):
        for name in ("model_a", "model_b", "category", "turn", "meta"):
            if c.has(name):
                c.error(name, "given without prompt/response_a/response_b (or has_text: false)")
        return None  # a reference to a pair by its key
    has_text = _boolean(c, "has_text", True)
    texts: list[str | None] = [None, None, None]
    if has_text:
        # In CSV an empty cell beside other texts is an empty text; in JSON, null is no text.
        texts = [
            c.data.get(name, "") if c.textual else c.string(name, None, nullable=True)
            for name in schema.TEXT_FIELDS
        ]
    meta = c.obj("meta", c.raw("meta", None)) if c.has("meta") else {}
    return PairContent(
        prompt=texts[0],
        response_a=texts[1],
        response_b=texts[2],
        model_a=c.string("model_a", "") or "",
        model_b=c.string("model_b", "") or "",
        category=c.string("category", "") or "",
        turn=c.integer("turn", 1, minimum=1) or 1,
        meta=meta or {},
        text_ref=f"generic:{key}",
    )


def _outcome(c: Checker, name: str, value: Any) -> str | None:
    outcome = normalise_outcome(value)
    if outcome is None:
        c.error(name, f"expected one of {', '.join(OUTCOMES)}, got {describe(value)}")
    return outcome


def _votes(c: Checker) -> list[Vote]:
    votes = []
    if c.has("human_vote"):
        outcome = _outcome(c, "human_vote", c.raw("human_vote"))
        voter = c.string("voter_id", "generic", nonempty=True)
        strength = c.integer("vote_strength", None, choices=(1, 2))
        source = c.choice("vote_source", VOTE_SOURCES, "generic")
        if outcome and voter and source:
            votes.append(Vote(voter, source, outcome, strength, "human_vote"))
    else:
        _refuse_without(c, schema.FLAT_VOTE_FIELDS)
    return votes + _nested_list(c, "votes", VOTE_KEYS, _nested_vote)


def _unknown_keys(c: Checker, data: dict[str, Any], known: frozenset[str]) -> None:
    for name in data:
        if name not in known:
            c.error(name, "unknown field")


def _nested_vote(c: Checker, path: str, item: dict[str, Any]) -> Vote | None:
    voter = c.string("voter_id", nonempty=True)
    outcome = _outcome(c, "outcome", c.raw("outcome")) if "outcome" in item else c.raw("outcome")
    strength = c.integer("strength", None, choices=(1, 2))
    source = c.choice("source", VOTE_SOURCES, "generic")
    if voter is None or outcome is None or source is None or outcome is MISSING:
        return None
    return Vote(voter, source, outcome, strength, path)


def _verdicts(c: Checker) -> list[VerdictRecord]:
    verdicts = []
    if c.has("judge"):
        verdict = _flat_verdict(c)
        if verdict is not None:
            verdicts.append(verdict)
    else:
        _refuse_without(c, schema.FLAT_VERDICT_FIELDS)
    return verdicts + _nested_list(c, "verdicts", VERDICT_KEYS, _nested_verdict)


def _refuse_without(c: Checker, flat_fields: tuple[str, ...]) -> None:
    """The flat vote's (verdict's) other columns mean nothing without its first one."""
    for name in flat_fields[1:]:
        if c.has(name):
            c.error(name, f"given without {flat_fields[0]}")


def _nested_list(
    c: Checker,
    name: str,
    keys: frozenset[str],
    read: Callable[[Checker, str, dict[str, Any]], T | None],
) -> list[T]:
    """The objects listed in column `name` (in CSV, as JSON text): each checked for unknown
    keys, then read by `read` with a checker of its own at its path (`votes[0]`)."""
    if not c.has(name):
        return []
    items = c.structure(name, c.raw(name))
    if items is not MISSING and not isinstance(items, list):
        c.error(name, f"expected a list of {name}, got {describe(items)}")
    if not isinstance(items, list):
        return []
    found: list[T] = []
    for i, item in enumerate(items):
        path = f"{name}[{i}]"
        if not isinstance(item, dict):
            c.error(path, f"expected an object, got {describe(item)}")
            continue
        nested = c.nested(path, item)
        _unknown_keys(nested, item, keys)
        value = read(nested, path, item)
        if value is not None:
            found.append(value)
    return found


def _judge(c: Checker, name: str, model_field: str, fingerprint_field: str) -> JudgeRef | None:
    judge = c.string(name, nonempty=True)
    model_id = c.string(model_field, None, nonempty=True)
    fingerprint = c.string(fingerprint_field, None, nonempty=True)
    if fingerprint is not None and len(fingerprint) > 64:
        c.error(fingerprint_field, f"longer than 64 characters ({len(fingerprint)})")
    if judge is not None and len(judge) > 200:
        c.error(name, f"longer than 200 characters ({len(judge)})")
        return None
    if judge is None:
        return None
    return JudgeRef(judge, model_id or judge, f"generic:{judge}", "", fingerprint or "")


def _order(
    c: Checker, outcome_field: str, status_field: str, default_status: str
) -> tuple[str | None, str]:
    """One presentation order's outcome and parse status; null or empty means no outcome."""
    value = c.raw(outcome_field, None)
    outcome = _outcome(c, outcome_field, value) if value is not None else None
    status = c.choice(status_field, PARSE_STATUSES, None)
    if status is None:
        status = "ok" if outcome is not None else default_status
    elif status == "ok" and value is None:
        c.error(outcome_field, f"missing ({status_field} is ok)")
    return outcome, status


def _judge_orders(
    c: Checker,
    judge_fields: tuple[str, str, str],
    ab_fields: tuple[str, str, str],
    ba_fields: tuple[str, str, str],
) -> tuple[JudgeRef | None, dict[str, Any]]:
    """A verdict's judge (see `_judge`) and both orders' outcome and status (see `_order`), as
    VerdictRecord's keyword arguments."""
    judge = _judge(c, *judge_fields)
    outcome_ab, status_ab = _order(c, *ab_fields)
    outcome_ba, status_ba = _order(c, *ba_fields)
    orders = {
        "outcome_ab": outcome_ab,
        "outcome_ba": outcome_ba,
        "status_ab": status_ab,
        "status_ba": status_ba,
    }
    return judge, orders


def _flat_verdict(c: Checker) -> VerdictRecord | None:
    judge, orders = _judge_orders(
        c,
        ("judge", "judge_model_id", "judge_fingerprint"),
        # An empty verdict cell for a judge that ran means its answer could not be read.
        ("judge_verdict", "judge_status", "failed"),
        ("judge_verdict_swapped", "judge_status_swapped", "not_run"),
    )
    if judge is None:
        return None
    return VerdictRecord(
        judge=judge,
        **orders,
        margin=c.number("judge_margin", None),
        raw_ab=c.string("judge_raw", "") or "",
        raw_ba=c.string("judge_raw_swapped", "") or "",
        field="judge_verdict",
    )


def _nested_verdict(c: Checker, path: str, item: dict[str, Any]) -> VerdictRecord | None:
    judge, orders = _judge_orders(
        c,
        ("judge", "model_id", "fingerprint"),
        ("outcome_ab", "status_ab", "not_run"),
        ("outcome_ba", "status_ba", "not_run"),
    )
    outcome = _outcome(c, "outcome", item["outcome"]) if c.has("outcome") else None
    consistent = item.get("consistent")
    if consistent is not None and not isinstance(consistent, bool):
        c.error("consistent", f"expected true, false or null, got {describe(consistent)}")
    criteria = [c.obj(name, item.get(name) or {}) for name in ("criteria_ab", "criteria_ba")]
    if judge is None:
        return None
    return VerdictRecord(
        judge=judge,
        **orders,
        raw_ab=c.string("raw_ab", "") or "",
        raw_ba=c.string("raw_ba", "") or "",
        margin=c.number("margin", None),
        margin_ab=c.number("margin_ab", None),
        margin_ba=c.number("margin_ba", None),
        strength=c.integer("strength", None, choices=(1, 2)),
        criteria_ab=criteria[0] or {},
        criteria_ba=criteria[1] or {},
        outcome=outcome,
        consistent=consistent if isinstance(consistent, bool) else None,
        field=path,
    )
