"""The demo's hh-rlhf report shows a numeric refusal gap for the shipped Gemma judge.

Built the way ``seed_demo`` builds it, on the pairs the verdict file names: the hh-rlhf rows
through the ``hh-rlhf`` importer (the shared file, filtered to those pairs to keep the test
short), the verdicts through seed_demo's own import step (the runnable judge version from the
``.meta.json``, then the ``generic`` importer), the response classes through the same
classification run seed_demo starts (the default refusal classifier), then the dataset's
snapshot. No model runs.
"""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils.html import escape

from analysis.report_studies import DEMONSTRATION_JUDGES
from analysis.services import snapshot_compute
from config.management.commands.seed_demo import GEMMA_VERDICTS, HH_RLHF_FILE, Command
from corpus.importers.services import dataset_for_import, import_file
from judges import gemma_verdicts as gv
from judges.models import Judge, ResponseClassification
from tests.judges.test_gemma_verdict_files import hh_subset

HH_SOURCE = Path(settings.BASE_DIR).parent / "shared" / "data" / "hh-rlhf" / HH_RLHF_FILE
HH_FILE = gv.DATA_DIR / GEMMA_VERDICTS["hh-rlhf"][0]

pytestmark = [
    pytest.mark.slow,  # classifies the 590 responses with the real classifier
    pytest.mark.skipif(not HH_SOURCE.exists(), reason="the shared hh-rlhf file is not available"),
]


def test_the_hh_rlhf_report_has_a_numeric_ethical_refusal_gap_with_an_interval_for_gemma(
    lead_client: Client, tmp_path: Path
) -> None:
    meta = json.loads(HH_FILE.with_suffix(".meta.json").read_text(encoding="utf-8"))
    keys = set(meta["pair_keys_in_sample_order"])
    dataset = dataset_for_import(name="hh-rlhf")
    job = import_file(dataset=dataset, fmt="hh-rlhf", path=hh_subset(keys, tmp_path))
    assert job.status == "done" and job.counts["pairs_created"] == len(keys)
    command = Command(stdout=StringIO())

    command._import_gemma(dataset, HH_FILE)
    command._classify(dataset)

    judge = Judge.objects.get(name=gv.JUDGE_NAME)
    assert judge.fingerprint == meta["fingerprint"]
    assert judge.config["verdict_mode"] == "next_token"  # the runnable version, not a stand-in
    assert judge.verdicts.count() == len(keys)
    refusals = ResponseClassification.objects.filter(
        response__prompt__dataset=dataset, label="ethical_refusal"
    ).count()
    assert refusals > 0
    snapshot = snapshot_compute(dataset=dataset)
    raters = snapshot.metrics["raters"]["judges"]
    rater = next(r["id"] for r in raters if r["judge_id"] == judge.pk)
    gap = snapshot.metrics["studies"]["refusal"]["gaps"][rater]
    row: dict[str, Any] = next(r for r in gap["rows"] if r["class"] == "ethical_refusal")
    value, (low, high) = row["gap"]["value"], row["gap"]["ci"]
    assert isinstance(value, float) and isinstance(low, float) and isinstance(high, float)
    assert low < value < high
    # The gap is the judge's coefficient minus the people's, on the same pairs.
    assert value == pytest.approx(row["judge"]["value"] - row["human"]["value"], abs=1e-9)
    assert gap["pairs"] > 0
    # The page shows it, and says beside this judge's gap what a 270M judge can show.
    page = lead_client.get("/reports/dataset/hh-rlhf/").content.decode()
    section = page[page.index('id="refusal-gap"') :]
    assert escape(DEMONSTRATION_JUDGES["gemma-3-270m"]) in section
    assert f"{100 * value:+.1f}" in section
