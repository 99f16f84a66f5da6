"""The Hugging Face folder: `datasets.load_dataset` reads it, with the Parquet export's rows."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
import yaml
from django.core.management import CommandError, call_command

from analysis.export import export_to_file
from analysis.hf_export import DATA_FILE, export_hf_folder
from annotation import models as am
from tests.analysis.test_export import audit  # noqa: F401  - the shared fixture

datasets = pytest.importorskip("datasets")


def test_it_loads_with_datasets_and_holds_the_parquet_exports_rows(
    audit: am.Audit,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    folder = tmp_path / "calibration"
    result = export_hf_folder(audit_ids=[audit.pk], folder=folder)
    export_to_file(audit_ids=[audit.pk], fmt="parquet", path=tmp_path / "flat.parquet")

    loaded = datasets.load_dataset(str(folder), split="train", cache_dir=str(tmp_path / "cache"))

    expected = pd.read_parquet(tmp_path / "flat.parquet")
    frame = loaded.to_pandas()
    assert list(frame.columns) == list(expected.columns)
    pd.testing.assert_frame_equal(frame, expected, check_dtype=False)
    assert loaded.num_rows == result["counts"]["pairs"] == 3

    card = (folder / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    declared = {f["name"]: f["dtype"] for f in header["dataset_info"]["features"]}
    assert declared == {name: feature.dtype for name, feature in loaded.features.items()}
    assert declared["adjudicated"] == "bool" and declared["weight"] == "float64"
    assert header["configs"][0]["data_files"][0]["path"] == DATA_FILE
    assert header["dataset_info"]["splits"][0]["num_examples"] == 3
    assert "license" not in header  # left for the user, as a comment in the header
    assert "# license: fill in" in card
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["sha256"] in card and f"| pairs | {manifest['counts']['pairs']} |" in card
    assert f"| adjudicated pairs | {manifest['counts']['adjudicated']} |" in card


def test_it_exports_from_the_command_into_a_new_folder(
    audit: am.Audit,  # noqa: F811
    tmp_path: Path,
) -> None:
    out = StringIO()
    folder = tmp_path / "hf"
    call_command("export_hf", "--audit", str(audit.pk), "--output", str(folder), stdout=out)

    assert (folder / DATA_FILE).exists() and (folder / "README.md").exists()
    assert "3 pairs" in out.getvalue()
    with pytest.raises(CommandError, match="exists; choose a new folder"):
        call_command("export_hf", "--audit", str(audit.pk), "--output", str(folder))
