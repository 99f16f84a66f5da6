"""What the report shows of the self-family preference (``metrics["studies"]["self_family"]``),
built from the snapshot's stored JSON only: per family, each judge's win rate for that
family's responses next to the people's on the same pairs, the difference with its paired
interval (the judge's own family marked), and each judge's ``same_family`` x judge
coefficient of the stacked linear probability model."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Cell = Callable[..., dict[str, Any]]


def self_family_model(
    data: Mapping[str, Any] | None, names: Mapping[str, str], *, pts: Cell, percent: Cell
) -> dict[str, Any]:
    """The section's rows; ``reason`` instead when the snapshot has none (older snapshots).

    ``pts`` and ``percent`` are the report's cell formatters (`analysis.report_studies`),
    passed in so this module needs nothing from it."""
    if not data:
        return {"reason": "not computed in this snapshot"}
    judge_families = data.get("judge_families") or {}
    out: dict[str, Any] = {
        "reason": data.get("reason"),
        "judges": [
            {"label": names.get(j, j), "family": f or "(unknown)"}
            for j, f in judge_families.items()
        ],
        "unknown_models": data.get("unknown_models") or [],
        "families": [],
        "lpm": [],
    }
    by_family: dict[str, list[dict[str, Any]]] = {}
    for row in data.get("rows") or []:
        judge_win = row.get("judge_win") or {}
        human_win = row.get("human_win") or {}
        by_family.setdefault(row["family"], []).append(
            {
                "label": names.get(row["judge"], row["judge"]),
                "own": bool(row.get("own")),
                "pairs": row.get("pairs"),
                "judge_win": percent(judge_win.get("value"), *(judge_win.get("ci") or [None] * 2)),
                "human_win": percent(human_win.get("value"), *(human_win.get("ci") or [None] * 2)),
                "difference": pts(row.get("difference")),
            }
        )
    out["families"] = [{"family": f, "rows": rows} for f, rows in by_family.items()]
    for judge, model in (data.get("lpm") or {}).items():
        out["lpm"].append(
            {
                "label": names.get(judge, judge),
                "family": model.get("family"),
                "pairs": model.get("pairs"),
                "reason": model.get("reason"),
                "human": pts(model.get("human")),
                "judge": pts(model.get("judge")),
                "interaction": pts(model.get("interaction")),
            }
        )
    return out
