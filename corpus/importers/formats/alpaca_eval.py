"""AlpacaEval annotations: `results/<model>/<annotator>/annotations.json`, as AlpacaEval writes
them (a JSON array, often gzipped).

Each row `instruction, output_1, generator_1, output_2, generator_2, annotator, preference,
raw_completion[, dataset, referenced_models, price_per_example, time_per_example]` becomes one
pair: the baseline's output (`generator_1`) is response A, the evaluated model's
(`generator_2`) response B, and the annotator's preference a verdict by the imported judge
`<annotator> · alpaca-eval`.

`preference` is 1 (output_1 better), 2 (output_2 better) or 1.5 (a tie; 0 in older files);
the weighted annotators (`weighted_*`) give 1 + the judge's probability of output_2. The
verdict is AlpacaEval's discrete reading (its zero-one scoring rule): below 1.5 A, above 1.5 B,
1.5 a tie. For a weighted annotator the margin is 3 - 2p, the judge's probability of output_1
minus that of output_2 (> 0 favours the baseline). A missing preference (absent, null, NaN,
empty) is a failed parse: kept with its raw completion, counted, no outcome.

Key: `ae:<16 hex digits of sha256(instruction, output_1)>:<generator_2>`, so the files of
several models judged by one annotator join on the instruction and the baseline's output (one
prompt, one baseline response, one pair per model), and two annotators of the same model's
outputs land on the same pairs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, Final

from corpus.importers.fields import MISSING, Checker
from corpus.importers.formats.base import ParseContext, per_item
from corpus.importers.readers import describe
from corpus.importers.records import (
    JudgeRef,
    PairContent,
    Row,
    RowError,
    VerdictRecord,
    sha256_text,
)

REQUIRED: Final = ("instruction", "output_1", "generator_1", "output_2", "generator_2", "annotator")
SOURCE: Final = "alpaca-eval"
WEIGHTED_PREFIX: Final = "weighted_"


def pair_key(instruction: str, baseline_output: str, model: str) -> str:
    digest = sha256_text(instruction + "\x1f" + baseline_output)
    return f"ae:{digest[:16]}:{model}"


def read_preference(c: Checker) -> float | None:
    """The preference in [1, 2] (the old tie 0 read as 1.5), or None.

    None without an error when it is not given (absent, null, NaN, an empty string): the
    judge's failed parse. A value that is not a preference at all is an error in the file,
    recorded on the checker.
    """
    value = c.data.get("preference", MISSING)
    if value is MISSING or value is None:
        return None
    number: Any = value
    if isinstance(value, str):
        if not value.strip():
            return None
        try:
            number = float(value)
        except ValueError:
            number = None
    if isinstance(number, bool) or not isinstance(number, int | float):
        c.error("preference", f"expected a number between 1 and 2, got {describe(value)}")
        return None
    if math.isnan(number):
        return None
    if number == 0:
        return 1.5
    if not 1 <= number <= 2:
        c.error("preference", f"expected a number between 1 and 2 (1.5 a tie), got {value!r}")
        return None
    return float(number)


def outcome_of(preference: float) -> str:
    """AlpacaEval's discrete reading of a preference (ZeroOneScoringRule)."""
    if preference == 1.5:
        return "tie"
    return "A" if preference < 1.5 else "B"


def _raw(data: dict[str, Any]) -> str:
    """The judge's output as JSON: raw_completion, and which output each model letter named."""
    kept = {"raw_completion": data.get("raw_completion")}
    if "referenced_models" in data:
        kept["referenced_models"] = data["referenced_models"]
    return json.dumps(kept, ensure_ascii=False)


def parse(ctx: ParseContext) -> Iterator[Row | RowError]:
    return per_item(ctx.source, _row, required=REQUIRED)


def _row(c: Checker) -> Iterator[Row | RowError]:
    instruction = c.string("instruction")
    output_1 = c.string("output_1")
    output_2 = c.string("output_2")
    baseline = c.string("generator_1", nonempty=True)
    model = c.string("generator_2", nonempty=True)
    annotator = c.string("annotator", nonempty=True)
    category = c.string("dataset", "")
    preference = read_preference(c)
    if baseline is not None and baseline == model:
        c.error("generator_2", f"the same model as generator_1 ({model!r})")
    if (
        c.errors
        or instruction is None
        or output_1 is None
        or output_2 is None
        or baseline is None
        or model is None
        or annotator is None
    ):
        yield from c.errors
        return
    judge = JudgeRef(f"{annotator} · alpaca-eval", annotator, SOURCE)
    verdict = VerdictRecord(judge=judge, raw_ab=_raw(c.data), field="preference")
    if preference is None:
        verdict.status_ab = "failed"
    else:
        verdict.status_ab = "ok"
        verdict.outcome_ab = outcome_of(preference)
        if annotator.startswith(WEIGHTED_PREFIX):
            verdict.margin = verdict.margin_ab = 3.0 - 2.0 * preference
    pair = PairContent(
        prompt=instruction,
        response_a=output_1,
        response_b=output_2,
        model_a=baseline,
        model_b=model,
        category=category or "",
    )
    key = pair_key(instruction, output_1, model)
    yield Row(c.item.line, key, "instruction", pair, verdicts=[verdict])
