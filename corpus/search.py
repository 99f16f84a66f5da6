"""Full-text search over a pair's texts: its prompt and both responses.

The index is one document per pair, kept by the database itself (migration
`corpus/0004_pair_search`), so every way a pair arrives (the importers' COPY, the ORM, a
fixture) is indexed in the same transaction:

- PostgreSQL: `corpus_pair_search(pair_id, document tsvector)` with a GIN index, filled by
  statement-level triggers on `annotation_pair` (English stemming, `to_tsvector('english', …)`);
- SQLite: the FTS5 table `corpus_pair_fts(prompt, responses)` (porter stemming), rowid = the
  pair's id, filled by row triggers.

A text changed after its pairs were made (a verdict-only import later given texts) re-indexes
its pairs through triggers on the prompt and response tables. Each text is indexed up to its
first `INDEXED_CHARS` characters (a PostgreSQL tsvector is at most 1 MB).

What people type is never handed to a query parser: `search_terms` keeps words and quoted
phrases only, so a stray quote, `AND`, `*` or `(` can never make a query fail. Terms are
ANDed; a phrase matches its words in order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import QuerySet
from django.db.models.expressions import RawSQL

from corpus.models import Pair

INDEXED_CHARS = 100_000
MAX_TERMS = 12
MAX_TERM_CHARS = 80
_PHRASE_OR_WORD = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w+")

PG_TABLE = "corpus_pair_search"
SQLITE_TABLE = "corpus_pair_fts"


@dataclass(frozen=True)
class Term:
    """A word, or several words that must appear together in this order (a phrase)."""

    words: tuple[str, ...]

    @property
    def text(self) -> str:
        return " ".join(self.words)


def search_terms(query: str) -> list[Term]:
    """The words and "quoted phrases" of what someone typed, lowercased; punctuation and
    operators are dropped (they separate words), an unclosed quote is ignored. At most
    MAX_TERMS terms of at most MAX_TERM_CHARS characters each."""
    terms: list[Term] = []
    for phrase, bare in _PHRASE_OR_WORD.findall(query):
        # A bare word with punctuation inside ("gpt-4", "don't") becomes the phrase of its parts.
        words = tuple(w.lower()[:MAX_TERM_CHARS] for w in _WORD.findall(phrase or bare))
        if words:
            terms.append(Term(words))
    unique = list(dict.fromkeys(terms))
    return unique[:MAX_TERMS]


def fts5_match(terms: list[Term]) -> str:
    """The FTS5 MATCH string: each term a quoted string (a phrase), ANDed by juxtaposition.
    Words are `\\w+` only, so they hold no quote to escape."""
    return " ".join(f'"{term.text}"' for term in terms)


def websearch_text(terms: list[Term]) -> str:
    """The text for PostgreSQL's websearch_to_tsquery: every term in quotes, so a typed `or`
    or `-word` stays a word (unquoted, websearch would read them as operators)."""
    return " ".join(f'"{term.text}"' for term in terms)


def search_backend() -> str:
    """What searches the texts on this database, for people."""
    if connection.vendor == "postgresql":
        return "PostgreSQL full-text search (English stemming)"
    return "SQLite FTS5 (Porter stemming)"


def matching_pair_ids(terms: list[Term]) -> RawSQL:
    """A subquery of the ids of pairs whose texts hold every term (use with `pk__in`)."""
    if connection.vendor == "postgresql":
        return RawSQL(
            f"SELECT pair_id FROM {PG_TABLE} WHERE document @@ websearch_to_tsquery('english', %s)",
            [websearch_text(terms)],
        )
    return RawSQL(
        f"SELECT rowid FROM {SQLITE_TABLE} WHERE {SQLITE_TABLE} MATCH %s", [fts5_match(terms)]
    )


def pairs_search(pairs: QuerySet[Pair], query: str) -> QuerySet[Pair]:
    """`pairs` narrowed to those whose prompt or responses hold every term of `query`; all
    of them when the query has no words."""
    terms = search_terms(query)
    if not terms:
        return pairs
    return pairs.filter(pk__in=matching_pair_ids(terms))
