"""What the report shows of the self-family preference (the typed ``Studies.self_family``),
built from the snapshot's stored figures only: per family, each judge's win rate for that
family's responses next to the people's on the same pairs, the difference with its paired
interval (the judge's own family marked), and each judge's ``same_family`` x judge
coefficient of the stacked linear probability model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from analysis.snapshot import SelfFamilyStudy

Cell = Callable[..., dict[str, Any]]


def self_family_model(
    data: SelfFamilyStudy | None, names: Mapping[str, str], *, pts: Cell, percent: Cell
) -> dict[str, Any]:
    """The section's rows; ``reason`` instead when the snapshot has none (older snapshots).

    ``pts`` and ``percent`` are the report's cell formatters (`analysis.report_studies`),
    passed in so this module needs nothing from it."""
    if data is None:
        return {"reason": "not computed in this snapshot"}
    out: dict[str, Any] = {
        "reason": data.reason,
        "judges": [
            {"label": names.get(j, j), "family": f or "(unknown)"}
            for j, f in data.judge_families.items()
        ],
        "unknown_models": data.unknown_models,
        "families": [],
        "lpm": [],
    }
    by_family: dict[str, list[dict[str, Any]]] = {}
    for row in data.rows:
        by_family.setdefault(row.family, []).append(
            {
                "label": names.get(row.judge, row.judge),
                "own": row.own,
                "pairs": row.pairs,
                "judge_win": percent(row.judge_win.value, *(row.judge_win.ci or (None, None))),
                "human_win": percent(row.human_win.value, *(row.human_win.ci or (None, None))),
                "difference": pts(row.difference),
            }
        )
    out["families"] = [{"family": f, "rows": rows} for f, rows in by_family.items()]
    for judge, model in data.lpm.items():
        out["lpm"].append(
            {
                "label": names.get(judge, judge),
                "family": model.family,
                "pairs": model.pairs,
                "reason": model.reason,
                "human": pts(model.human),
                "judge": pts(model.judge),
                "interaction": pts(model.interaction),
            }
        )
    return out
