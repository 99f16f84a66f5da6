"""What every format parser yields: normalised rows, votes, verdicts and row errors.

No Django here. A parser turns one file into `Row`s (a pair, or a reference to a pair by its
key, with the human votes and judge verdicts the row carries) and `RowError`s; the service
writes the rows. Content hashes are computed here so that de-duplication means the same thing
whichever way a file arrives (command, upload, API, bench).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Final

OUTCOMES: Final = ("A", "B", "tie", "both_bad")
PARSE_STATUSES: Final = ("ok", "failed", "error", "not_run")
# Mirrors annotation.models.HumanVote.Source (a test keeps the two in step).
VOTE_SOURCES: Final = (
    "arena_user",
    "pandalm_annotator",
    "mtbench_expert",
    "hh_rlhf",
    "llmbar",
    "generic",
    "calibration",
)

# Hashed in place of a text that the file does not give (e.g. MT-Bench verdicts without the
# answers): it can never collide with a real text, which cannot contain NUL once cleaned.
_NO_TEXT: Final = "\x00no-text\x00"
_SEP: Final = "\x1f"
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


_UNPRINTABLE: Final = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def printable(text: str) -> str:
    """Text for a message: control characters and lone surrogates written as escapes
    (`\\u0000`), so a NUL in a column name is shown, and stored, as what it is."""
    if text.isprintable():
        return text
    return _UNPRINTABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@dataclass(frozen=True, slots=True)
class RowError:
    file: str
    line: int
    field: str
    problem: str

    def __str__(self) -> str:
        file, field, problem = printable(self.file), printable(self.field), printable(self.problem)
        if self.line <= 0:  # about the whole file, not one row
            return f"{file}: {field}: {problem}"
        return f"{file}:{self.line}: {field}: {problem}"


@dataclass(slots=True)
class PairContent:
    """A prompt and two responses. A text of None means the file does not give it."""

    prompt: str | None
    response_a: str | None
    response_b: str | None
    model_a: str = ""
    model_b: str = ""
    category: str = ""
    turn: int = 1
    meta: dict[str, Any] = field(default_factory=dict)
    # Identifies a prompt (and, with the model name, a response) whose text is unknown, so
    # text-less rows of one question still share one Prompt row.
    text_ref: str = ""


@dataclass(slots=True)
class Vote:
    voter_id: str
    source: str
    outcome: str
    strength: int | None = None
    field: str = ""  # where the vote sits in the source row, for messages


@dataclass(frozen=True, slots=True)
class JudgeRef:
    """An imported judge: the same model, source and template always give one fingerprint."""

    name: str
    model_id: str
    source: str
    template: str = ""
    explicit_fingerprint: str = ""

    @property
    def fingerprint(self) -> str:
        if self.explicit_fingerprint:
            return self.explicit_fingerprint
        payload = {"provider": "imported", "model_id": self.model_id, "source": self.source}
        if self.template:
            payload["template"] = self.template
        return hashlib.sha256(canonical_json(payload).encode()).hexdigest()


@dataclass(slots=True)
class VerdictRecord:
    """One judge's verdict on a pair, in both presentation orders where the file gives them.

    `outcome_ba` is already in the pair's own labelling (A = response_a), like the model's.
    """

    judge: JudgeRef
    outcome_ab: str | None = None
    outcome_ba: str | None = None
    status_ab: str = "not_run"
    status_ba: str = "not_run"
    raw_ab: str = ""
    raw_ba: str = ""
    margin: float | None = None
    margin_ab: float | None = None
    margin_ba: float | None = None
    strength: int | None = None
    criteria_ab: dict[str, Any] = field(default_factory=dict)
    criteria_ba: dict[str, Any] = field(default_factory=dict)
    # Set only when the file states the combined verdict without both orders (MT-Bench's
    # "tie (inconsistent)"); otherwise `combine` derives them.
    outcome: str | None = None
    consistent: bool | None = None
    field: str = ""

    def combine(self) -> tuple[str | None, bool | None]:
        """The combined outcome and whether both orders agreed (MT-Bench's rule).

        Both orders parsed: the common answer if they agree, else a tie (inconsistent).
        One order parsed: that order's answer, consistency unknown.
        """
        if self.outcome is not None or self.consistent is not None:
            return self.outcome, self.consistent
        ab = self.outcome_ab if self.status_ab == "ok" else None
        ba = self.outcome_ba if self.status_ba == "ok" else None
        if ab is not None and ba is not None:
            return (ab, True) if ab == ba else ("tie", False)
        return (ab if ab is not None else ba), None

    @property
    def failed_parses(self) -> int:
        return (self.status_ab == "failed") + (self.status_ba == "failed")


@dataclass(slots=True)
class Row:
    """One source row: a pair (or, with `pair` None, a reference to one by key) and its labels."""

    line: int
    key: str
    key_field: str
    pair: PairContent | None
    votes: list[Vote] = field(default_factory=list)
    verdicts: list[VerdictRecord] = field(default_factory=list)
    # Filled by `prepare_row` (hashes of the pair, votes and verdicts, cleaned texts).
    prepared: PreparedPair | None = None
    vote_shas: list[str] = field(default_factory=list)
    verdict_shas: list[str] = field(default_factory=list)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def clean_text(text: str) -> tuple[str, bool]:
    """Text a database can store: NUL and lone surrogates (broken emoji in scraped chat logs)
    become U+FFFD. Returns the text and whether anything was replaced."""
    if text.isascii() and "\x00" not in text:  # the common case, checked in O(1) + memchr
        return text, False
    repaired = False
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
        repaired = True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _SURROGATE.sub("\ufffd", text)
        repaired = True
    return text, repaired


def prompt_hash(text: str | None, text_ref: str) -> str:
    return sha256_text(text) if text is not None else sha256_text(_NO_TEXT + text_ref)


def response_hash(text: str | None, text_ref: str, model: str) -> str:
    if text is not None:
        return sha256_text(text)
    return sha256_text(_NO_TEXT + text_ref + _SEP + model)


def pair_hash(
    prompt_sha: str, model_a: str, sha_a: str, model_b: str, sha_b: str, turn: int
) -> str:
    return sha256_text(_SEP.join((prompt_sha, model_a, sha_a, model_b, sha_b, str(turn))))


def vote_hash(key: str, vote: Vote) -> str:
    strength = "" if vote.strength is None else str(vote.strength)
    return sha256_text(_SEP.join(("vote", key, vote.source, vote.voter_id, vote.outcome, strength)))


def verdict_hash(key: str, verdict: VerdictRecord) -> str:
    outcome, consistent = verdict.combine()
    return sha256_text(
        canonical_json(
            [
                "verdict",
                key,
                verdict.judge.fingerprint,
                outcome,
                consistent,
                verdict.outcome_ab,
                verdict.outcome_ba,
                verdict.status_ab,
                verdict.status_ba,
                verdict.raw_ab,
                verdict.raw_ba,
                verdict.margin,
                verdict.margin_ab,
                verdict.margin_ba,
                verdict.strength,
                verdict.criteria_ab,
                verdict.criteria_ba,
            ]
        )
    )


def join_turns(turns: list[str]) -> str:
    """One text for a conversation side: a single turn as it is, several under turn headers.

    Chatbot Arena and MT-Bench turn 2 keep each side's turns together: the prompt holds the
    user turns, each response that model's assistant turns, in order.
    """
    if len(turns) == 1:
        return turns[0]
    return "\n\n".join(f"[Turn {i}]\n{text}" for i, text in enumerate(turns, start=1))


_OUTCOME_SPELLINGS: Final = {"a": "A", "b": "B", "tie": "tie", "both_bad": "both_bad"}


def normalise_outcome(value: object) -> str | None:
    """A, B, tie or both_bad (any case), else None."""
    if not isinstance(value, str):
        return None
    return _OUTCOME_SPELLINGS.get(value.strip().lower())


@dataclass(slots=True)
class PreparedPair:
    """A pair's texts as they will be stored (cleaned) and their content hashes."""

    prompt: str
    prompt_sha: str
    response_a: str
    sha_a: str
    has_a: bool
    response_b: str
    sha_b: str
    has_b: bool
    content_sha: str
    prompt_has_text: bool
    repaired: int


def _text_sha(text: str | None, no_text: str) -> tuple[str, str, bool, bool]:
    """(text to store, its hash, has text, was repaired); one encode serves both checks."""
    if text is None:
        return "", sha256_text(_NO_TEXT + no_text), False, False
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:
        data = b"\x00"
    repaired = b"\x00" in data
    if repaired:
        text, _ = clean_text(text)
        data = text.encode("utf-8")
    return text, hashlib.sha256(data).hexdigest(), True, repaired


def prepare_pair(pair: PairContent) -> PreparedPair:
    prompt, prompt_sha, prompt_has_text, fixed_p = _text_sha(pair.prompt, pair.text_ref)
    ref_a = pair.text_ref + _SEP + pair.model_a
    ref_b = pair.text_ref + _SEP + pair.model_b
    text_a, sha_a, has_a, fixed_a = _text_sha(pair.response_a, ref_a)
    text_b, sha_b, has_b, fixed_b = _text_sha(pair.response_b, ref_b)
    content = pair_hash(prompt_sha, pair.model_a, sha_a, pair.model_b, sha_b, pair.turn)
    return PreparedPair(
        prompt,
        prompt_sha,
        text_a,
        sha_a,
        has_a,
        text_b,
        sha_b,
        has_b,
        content,
        prompt_has_text,
        fixed_p + fixed_a + fixed_b,
    )


def clean_json(value: Any) -> Any:
    """A JSON value whose strings a database can store (see `clean_text`)."""
    if isinstance(value, str):
        return clean_text(value)[0]
    if isinstance(value, dict):
        return {clean_text(str(k))[0]: clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(v) for v in value]
    return value


# Column sizes of the data model, checked before writing (PostgreSQL would refuse the file
# with a database error instead of a line number).
MAX_KEY, MAX_MODEL, MAX_CATEGORY, MAX_VOTER, MAX_JUDGE, MAX_MODEL_ID = 255, 200, 100, 200, 200, 300


def row_problems(row: Row) -> list[tuple[str, str]]:
    """(field, problem) for values longer than the columns that store them."""
    checks = [(row.key_field, row.key, MAX_KEY)]
    if row.pair is not None:
        pair = row.pair
        checks += [
            ("model_a", pair.model_a, MAX_MODEL),
            ("model_b", pair.model_b, MAX_MODEL),
            ("category", pair.category, MAX_CATEGORY),
        ]
    checks += [(vote.field or "voter_id", vote.voter_id, MAX_VOTER) for vote in row.votes]
    for verdict in row.verdicts:
        checks.append((verdict.field or "judge", verdict.judge.name, MAX_JUDGE))
        checks.append((verdict.field or "judge", verdict.judge.model_id, MAX_MODEL_ID))
    return [
        (field, f"longer than {limit} characters ({len(value)})")
        for field, value, limit in checks
        if len(value) > limit
    ]


def clean_row(row: Row) -> None:
    """Make the row's short strings storable in place (keys, model names, voter ids)."""
    row.key = clean_text(row.key)[0]
    if row.pair is not None:
        row.pair.model_a = clean_text(row.pair.model_a)[0]
        row.pair.model_b = clean_text(row.pair.model_b)[0]
        row.pair.category = clean_text(row.pair.category)[0]
    for vote in row.votes:
        vote.voter_id = clean_text(vote.voter_id)[0]


def prepare_row(row: Row) -> list[tuple[str, str]]:
    """Clean and hash a row for writing; returns its (field, problem)s, if any.

    Pure and independent of other rows, so the service does it while the database is busy.
    """
    clean_row(row)
    problems = row_problems(row)
    if row.pair is not None:
        row.prepared = prepare_pair(row.pair)
    row.vote_shas = [vote_hash(row.key, vote) for vote in row.votes]
    row.verdict_shas = [verdict_hash(row.key, verdict) for verdict in row.verdicts]
    return problems
