"""The calibration set as a Hugging Face `datasets` folder.

    <folder>/
      README.md                          dataset card: YAML header (features, split, data files)
      data/train-00000-of-00001.parquet  the flat export (analysis.export_flat), one row per pair
      manifest.json                      the export's manifest (counts, judges, sha256, version)

`datasets.load_dataset("<folder>")` (or `load_dataset("parquet", data_dir="<folder>/data")`)
reads it; `huggingface-cli upload` publishes it. The card's `license` is left for the user to
fill in: Tribunal does not know the licence of the data it audited.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from django.template.loader import render_to_string

from analysis.export import audits_get, export_to_file, flat_plan
from analysis.export_flat import FlatPlan

DATA_FILE = "data/train-00000-of-00001.parquet"
# Arrow types of the flat layout -> the `dtype` names of `datasets.Value`.
DTYPES = {"string": "string", "bool": "bool", "int32": "int32", "int64": "int64"}
DTYPES["float64"] = "float64"


def _yaml(value: Any) -> str:
    """A YAML scalar: JSON's quoting is valid YAML for strings."""
    return json.dumps(value, ensure_ascii=False)


def card_features(plan: FlatPlan) -> list[dict[str, str]]:
    return [{"name": name, "dtype": DTYPES[kind]} for name, kind in plan.schema()]


def export_hf_folder(*, audit_ids: Sequence[int], folder: Path | str) -> dict[str, Any]:
    """Write the folder; returns the manifest. The folder may exist but must hold no data file."""
    folder = Path(folder)
    audits = audits_get(list(audit_ids))
    data = folder / DATA_FILE
    data.parent.mkdir(parents=True, exist_ok=True)
    result = export_to_file(audit_ids=[a.pk for a in audits], fmt="parquet", path=data)
    beside = data.with_name(data.name + ".manifest.json")
    beside.unlink()  # one manifest, at the top of the folder (not a data file)
    result["file"] = DATA_FILE
    (folder / "manifest.json").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    plan = flat_plan([a.pk for a in audits])
    names = ", ".join(a.name for a in audits)
    context = {
        "pretty_name": _yaml(f"Tribunal calibration set: {names}"),
        "features": [{"name": _yaml(f["name"]), "dtype": f["dtype"]} for f in card_features(plan)],
        "num_examples": result["counts"]["pairs"],
        "num_bytes": result["bytes"],
        "manifest": result,
        "audits": audits,
        "data_file": DATA_FILE,
        "annotator_columns": plan.annotators,
        "judge_columns": plan.describe()["judge_columns"],
        "strata": sorted(result["counts"]["strata"].items()),
    }
    (folder / "README.md").write_text(
        render_to_string("analysis/hf_dataset_card.md", context), encoding="utf-8"
    )
    return result
