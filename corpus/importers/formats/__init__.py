"""The import formats: one pure parser per format, and the registry the command lists.

No Django here. A parser reads one `RecordFile` and yields `Row`s and `RowError`s; it never
writes. `docs/import-formats.md` documents each format for users.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from corpus.importers.formats.base import ParseContext, ParseOptions, Parser

__all__ = ["FORMATS", "Format", "ParseContext", "ParseOptions", "Parser"]


@dataclass(frozen=True)
class Format:
    name: str
    summary: str  # one line for `import_pairs --help`
    parse: Parser
    default_dataset: str
    # False for files that only add labels to pairs another file creates (PandaLM's judge
    # files): a command imports those after the files that create pairs.
    creates_pairs: Callable[[Path, str], bool] = lambda path, name: True
    # The name a file given by its path is imported under (messages, keys that use it).
    display_name: Callable[[Path], str] = lambda path: path.name
    # Reads model answers and questions files (`--answers`, `--questions`) for the texts.
    side_files: bool = False


def _registry() -> dict[str, Format]:
    from corpus.importers.formats import (
        alpaca_eval,
        arena,
        arena_hard,
        generic,
        hh_rlhf,
        llmbar,
        mt_bench,
        pandalm,
        preference,
    )

    formats = [
        Format(
            "generic",
            "Tribunal's own schema, JSONL/CSV/Parquet: pair_id, prompt, response_a, "
            "response_b, optional models, votes and verdicts",
            generic.parse,
            "imported",
        ),
        Format(
            "pandalm",
            "PandaLM testset-v1.json (3 annotators) and its judge files "
            "(gpt-3.5-turbo-/pandalm-7b-testset-v1.json), detected by their fields",
            pandalm.parse,
            "pandalm",
            pandalm.creates_pairs,
        ),
        Format(
            "llmbar",
            "LLMBar Natural.json / Adversarial-*.json, or upstream's <subset>/dataset.json: "
            "input, output_1, output_2, label",
            llmbar.parse,
            "llmbar",
            display_name=llmbar.display_name,
        ),
        Format(
            "hh-rlhf",
            "Anthropic hh-rlhf *.jsonl(.gz): chosen/rejected dialogues, split at the last "
            "assistant turn",
            hh_rlhf.parse,
            "hh-rlhf",
        ),
        Format(
            "arena",
            "Chatbot Arena human preferences (CSV/JSONL/Parquet): id, model_a, model_b, "
            "prompt, response_a, response_b, winner_model_a/_b/_tie",
            arena.parse,
            "arena",
        ),
        Format(
            "mt-bench",
            "MT-Bench judgments (human experts and GPT-4 pair judges, JSONL); texts from "
            "--answers/--questions",
            mt_bench.parse,
            "mt-bench",
            side_files=True,
        ),
        Format(
            "alpaca-eval",
            "AlpacaEval annotations.json(.gz): baseline output_1 against output_2, the "
            "annotator's preference as a verdict (weighted annotators: with a margin)",
            alpaca_eval.parse,
            "alpaca-eval",
        ),
        Format(
            "arena-hard",
            "Arena-Hard-Auto model_judgment/<judge>/<model>.jsonl: both games as the two "
            "orders; texts from --answers/--questions, baseline --baseline (gpt-4-0314)",
            arena_hard.parse,
            "arena-hard",
            side_files=True,
        ),
        Format(
            "preference",
            "Preference data prompt/chosen/rejected (TRL plain or conversational; "
            "JSONL/Parquet): chosen as the human vote, reward scores as judges",
            preference.parse,
            "preference",
        ),
    ]
    return {f.name: f for f in formats}


FORMATS: dict[str, Format] = _registry()
