"""LLMBar's subsets: the shared files keep their keys, and upstream's `dataset.json` files (one
per subset folder) import side by side without colliding."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from corpus.importers.formats.llmbar import display_name, subset
from corpus.importers.services import dataset_for_import, import_file
from corpus.models import ImportJob, Pair
from tests.corpus.test_import_command import LLMBAR, refused, run, table_counts

pytestmark = pytest.mark.django_db


def upstream_copy(root: Path, *folders: str, source: str) -> Path:
    """A shared file laid out as upstream publishes it: Dataset/LLMBar/<folders>/dataset.json."""
    target = root.joinpath("Dataset", "LLMBar", *folders, "dataset.json")
    target.parent.mkdir(parents=True)
    shutil.copy(LLMBAR / source, target)
    return target


def test_it_keeps_the_keys_of_the_shared_files() -> None:
    files = sorted(LLMBAR.glob("*.json"))
    run("--format", "llmbar", *map(str, files))
    expected = {
        (f"{path.stem}:{i}", path.stem)
        for path in files
        for i in range(len(json.loads(path.read_text())))
    }
    assert set(Pair.objects.values_list("source_key", "category")) == expected
    assert {"Natural:17", "Adversarial-Neighbor:0", "Adversarial-GPTInst:3"} <= {
        key for key, _ in expected
    }


def test_it_imports_two_upstream_dataset_json_files_into_one_dataset(tmp_path: Path) -> None:
    natural = upstream_copy(tmp_path, "Natural", source="Natural.json")
    neighbor = upstream_copy(
        tmp_path, "Adversarial", "Neighbor", source="Adversarial-Neighbor.json"
    )
    run("--format", "llmbar", str(natural), str(neighbor))
    sizes = {
        stem: len(json.loads((LLMBAR / f"{stem}.json").read_text()))
        for stem in ("Natural", "Adversarial-Neighbor")
    }
    pairs = Pair.objects.filter(dataset__name="llmbar")
    assert pairs.count() == sum(sizes.values())
    for stem, size in sizes.items():
        keys = set(pairs.filter(category=stem).values_list("source_key", flat=True))
        assert keys == {f"{stem}:{i}" for i in range(size)}
    assert set(ImportJob.objects.values_list("filename", flat=True)) == {
        "Natural/dataset.json",
        "Adversarial/Neighbor/dataset.json",
    }
    # The renamed shared copies are the same subsets: they join the same pairs.
    before = table_counts()
    output = run(
        "--format",
        "llmbar",
        str(LLMBAR / "Natural.json"),
        str(LLMBAR / "Adversarial-Neighbor.json"),
    )
    assert table_counts() == before
    assert f"0 new pairs · {sizes['Natural']} existing pairs joined" in output


def test_it_names_upstream_files_by_their_subset_folders(tmp_path: Path) -> None:
    case = tmp_path / "Dataset" / "CaseStudy" / "Base_9" / "dataset.json"
    case.parent.mkdir(parents=True)
    case.write_text("[]")
    assert display_name(case) == "CaseStudy/Base_9/dataset.json"
    assert subset(display_name(case)) == "CaseStudy-Base_9"
    assert display_name(LLMBAR / "Natural.json") == "Natural.json"
    assert subset("Adversarial-Manual.json.gz") == "Adversarial-Manual"
    assert subset("dataset.json") is None


def test_it_reports_errors_under_the_subset_path(tmp_path: Path) -> None:
    neighbor = upstream_copy(
        tmp_path, "Adversarial", "Neighbor", source="Adversarial-Neighbor.json"
    )
    items = json.loads(neighbor.read_text())
    items[2]["label"] = 3
    neighbor.write_text(json.dumps(items, indent=4))
    line = neighbor.read_text().splitlines().index('        "label": 3') + 1
    output = refused("--format", "llmbar", str(neighbor))
    assert f"Adversarial/Neighbor/dataset.json:{line}: label: expected one of 1, 2, got 3" in output
    assert table_counts()["Pair"] == 0


def test_it_refuses_an_upload_named_dataset_json(tmp_path: Path) -> None:
    upload = tmp_path / "dataset.json"
    shutil.copy(LLMBAR / "Natural.json", upload)
    job = import_file(
        dataset=dataset_for_import(name="llmbar"), fmt="llmbar", path=upload, name="dataset.json"
    )
    assert job.status == ImportJob.Status.FAILED
    assert job.errors[0].startswith(
        "dataset.json: file: LLMBar names every subset dataset.json: rename the file"
    )
    assert Pair.objects.count() == 0
