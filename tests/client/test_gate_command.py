"""`tribunal gate` (and `report`, `export`, `import`) in a separate process against a live
server: exit codes 0/1/2 and the very lines `manage.py gate` prints, 3 for what leaves no
verdict (a wrong token, an unknown judge, no such audit)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.core.management import call_command

from tests.client import scenario
from tests.client.command import TOKEN_VAR, tribunal
from tests.client.conftest import Server

STORED_RULE = "lower(percent_agreement) >= 0.5"


@dataclass
class Gated:
    server: Server
    audit: int
    judge: int
    gate: int
    rows: list[dict[str, object]]

    def run(self, command: str, *args: str) -> tuple[int, str, str]:
        done = tribunal(
            command,
            "--url",
            self.server.url,
            "--token-env",
            TOKEN_VAR,
            *args,
            token=self.server.lead_token,
        )
        return done.returncode, done.stdout, done.stderr


@pytest.fixture
def gated(server: Server) -> Gated:
    """An audit of 12 pairs, no labels yet, with a stored gate about its judge."""
    rows = scenario.generic_rows()
    server.client.import_rows(rows, dataset=scenario.DATASET)
    audit = scenario.create_audit(server.client, "release")
    assert audit.judges is not None
    stored = server.http.put(
        f"/api/audits/{audit.id}/gate/",
        json={"judge": audit.judges[0], "rules": [STORED_RULE]},
        headers={"Authorization": f"Token {server.lead_token}"},
    )
    assert stored.status_code == 200, stored.text
    return Gated(server, audit.id, audit.judges[0], stored.json()["gate"], rows)


def manage_gate(*args: str) -> tuple[int, list[str]]:
    out = StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command("gate", *args, stdout=out)
    return int(exited.value.code or 0), out.getvalue().splitlines()


@pytest.mark.slow  # end to end, over 2 s (issue 10)
def test_it_exits_2_then_0_then_1_as_manage_py_gate(gated: Gated) -> None:
    audit = str(gated.audit)
    # Five labels: too few items behind an interval to decide.
    scenario.label_as_judge(gated.server.http, gated.audit, 5, gated.rows)
    code, out, err = gated.run("gate", "--audit", audit)
    assert (code, err) == (2, "")
    assert out.startswith("INCONCLUSIVE: ") and "more labels to decide" in out
    assert (code, out.splitlines()) == manage_gate(audit)

    # Every label, each as the judge chose: agreement 12/12 clears 0.5.
    scenario.label_as_judge(gated.server.http, gated.audit, scenario.PAIRS, gated.rows)
    code, out, err = gated.run("gate", "--audit", audit, "--judge", scenario.JUDGE)
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == [
        "PASS: all 1 rule(s) pass",
        f"audit {audit} · judge {scenario.JUDGE} v1",
    ]
    assert out.splitlines()[2].startswith(f"  [PASS] {STORED_RULE}")
    assert (code, out.splitlines()) == manage_gate(audit)

    # Rules of the pipeline's own, checked and not stored.
    rule = "upper(percent_agreement) < 0.5"
    code, out, err = gated.run("gate", "--audit", audit, "--judge", scenario.JUDGE, "--rule", rule)
    assert (code, err) == (1, "")
    assert out.startswith("FAIL: ") and f"  [FAIL] {rule}" in out
    assert (code, out.splitlines()) == manage_gate(audit, "--judge", scenario.JUDGE, "--rule", rule)
    code, out, _ = gated.run(
        "gate", "--audit", audit, "--judge", scenario.JUDGE, "--rule", rule, "--format", "json"
    )
    body = json.loads(out)
    assert (code, body["status"], body["exit_code"], body["gate"]) == (1, "FAIL", 1, None)
    assert body["judge"] == {"id": gated.judge, "name": scenario.JUDGE, "version": 1}
    assert gated.server.client.gate(gated.audit).gate == gated.gate  # nothing was stored


def test_it_exits_3_naming_the_variable_when_the_token_is_wrong_or_missing(gated: Gated) -> None:
    args = [
        "gate",
        "--url",
        gated.server.url,
        "--token-env",
        TOKEN_VAR,
        "--audit",
        str(gated.audit),
    ]
    wrong = tribunal(*args, token="0123456789abcdef")
    assert (wrong.returncode, wrong.stdout) == (3, "")
    assert wrong.stderr == (
        f"tribunal gate: the server at {gated.server.url}/api/ refused the token in "
        f"${TOKEN_VAR}: Invalid token.\n"
    )
    missing = tribunal(*args)
    assert (missing.returncode, missing.stdout) == (3, "")
    assert f"{TOKEN_VAR} is not set" in missing.stderr

    annotator = tribunal(*args, token=scenario.token(gated.server.http, scenario.ANNOTATOR))
    assert annotator.returncode == 3
    assert f"the token in ${TOKEN_VAR} may not do this" in annotator.stderr
    assert "Leads only." in annotator.stderr


def test_it_exits_3_listing_the_judges_for_an_unknown_judge(gated: Gated) -> None:
    for extra in (["--rule", STORED_RULE], []):
        code, out, err = gated.run(
            "gate", "--audit", str(gated.audit), "--judge", "gpt-nobody", *extra
        )
        assert (code, out) == (3, "")
        assert err == (
            f"tribunal gate: judge: 'gpt-nobody' is not a judge of audit {gated.audit} "
            f"(judges: {scenario.JUDGE} v1)\n"
        )
    code, out, err = gated.run("gate", "--audit", "999999")
    assert (code, out) == (3, "")
    assert "/api/audits/999999/gate/" in err and "No Audit matches" in err
    code, _, err = gated.run(
        "gate",
        "--audit",
        str(gated.audit),
        "--judge",
        scenario.JUDGE,
        "--rule",
        "lower(kappa) >= 1",
    )
    assert code == 3 and "rule 1, metric: unknown metric 'kappa'" in err


@pytest.mark.slow  # end to end, over 2 s (issue 10)
def test_it_reports_exports_and_imports_from_the_command(gated: Gated, tmp_path: Path) -> None:
    scenario.label_as_judge(gated.server.http, gated.audit, scenario.PAIRS, gated.rows)
    code, out, err = gated.run("report", "--audit", str(gated.audit))
    assert (code, err) == (0, "")
    report = json.loads(out)
    assert report["snapshot"]["label_count"] == scenario.PAIRS
    assert report["subject"] == {"kind": "audit", "id": gated.audit, "name": "release"}

    output = tmp_path / "calibration.parquet"
    code, out, err = gated.run("export", "--audit", str(gated.audit), "--output", str(output))
    assert (code, err) == (0, "")
    manifest = json.loads(Path(f"{output}.manifest.json").read_text())
    assert manifest["sha256"] == hashlib.sha256(output.read_bytes()).hexdigest()
    assert manifest["sha256"] in out
    assert pq.read_table(output).num_rows == scenario.PAIRS

    more = scenario.write_jsonl(tmp_path / "more.jsonl", scenario.generic_rows(scenario.PAIRS + 2))
    code, out, err = gated.run("import", "--dataset", scenario.DATASET, str(more))
    assert (code, err) == (0, "")
    assert "pairs_created 2" in out and f"pairs_matched {scenario.PAIRS}" in out
    rows = scenario.generic_rows(2)
    rows[1]["prompt"] = 42
    bad = scenario.write_jsonl(tmp_path / "bad.jsonl", rows)
    code, out, err = gated.run("import", "--dataset", "other", str(bad))
    assert (code, out) == (1, "")
    assert "bad.jsonl:2: prompt" in err
