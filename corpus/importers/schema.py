"""Tribunal's own row layout, the `generic` format: its columns and nested keys, written once.

The `generic` importer (`corpus.importers.formats.generic`) accepts exactly these, and the
calibration-set export (`analysis.export`) writes them, so an exported file imports back as it
was; `tests/analysis/test_export.py` checks a real export against this list both ways. The
columns are documented in `docs/import-formats.md`. No Django here.
"""

from __future__ import annotations

from typing import Final

TEXT_FIELDS: Final = ("prompt", "response_a", "response_b")
PAIR_FIELDS: Final = (
    "pair_id",
    *TEXT_FIELDS,
    "has_text",
    "model_a",
    "model_b",
    "category",
    "turn",
    "meta",
)
VOTES: Final = "votes"  # a list of objects with VOTE_KEYS
VERDICTS: Final = "verdicts"  # a list of objects with VERDICT_KEYS

# What the export writes, in this order: the pair, then every vote and verdict in the lists.
COLUMNS: Final = (*PAIR_FIELDS, VOTES, VERDICTS)
# Columns holding JSON text in CSV and Parquet cells.
STRUCTURED: Final = ("meta", VOTES, VERDICTS)
# Parquet types of the columns that are not strings (structured ones are JSON text).
COLUMN_TYPES: Final = {"has_text": "bool", "turn": "int32"}

# One vote or one verdict spelled out in columns, for files written by hand; the first names
# the vote (or the judge), the others are refused without it. The export writes the lists.
FLAT_VOTE_FIELDS: Final = ("human_vote", "voter_id", "vote_strength", "vote_source")
FLAT_VERDICT_FIELDS: Final = (
    "judge",
    "judge_model_id",
    "judge_fingerprint",
    "judge_verdict",
    "judge_verdict_swapped",
    "judge_status",
    "judge_status_swapped",
    "judge_margin",
    "judge_raw",
    "judge_raw_swapped",
)
# Every column the importer accepts; any other is refused so a typo never drops data.
FIELDS: Final = frozenset(COLUMNS + FLAT_VOTE_FIELDS + FLAT_VERDICT_FIELDS)

VOTE_KEYS: Final = ("voter_id", "outcome", "strength", "source")
# A verdict's judge: its name (required), model and fingerprint (an existing version).
VERDICT_JUDGE_KEYS: Final = ("judge", "model_id", "fingerprint")
# Values of a stored verdict copied as they are; the export leaves out those not set.
VERDICT_PLAIN_KEYS: Final = (
    "outcome_ab",
    "outcome_ba",
    "status_ab",
    "status_ba",
    "margin",
    "margin_ab",
    "margin_ba",
    "strength",
    "raw_ab",
    "raw_ba",
    "outcome",
)
VERDICT_CRITERIA_KEYS: Final = ("criteria_ab", "criteria_ba")  # objects, per order
VERDICT_KEYS: Final = (
    *VERDICT_JUDGE_KEYS,
    *VERDICT_PLAIN_KEYS,
    "consistent",
    *VERDICT_CRITERIA_KEYS,
)
