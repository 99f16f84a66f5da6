"""`POST /api/audits/<id>/gate/check/`: rules for a judge named as `manage.py gate --judge`
names it, checked and stored nowhere (the endpoint `tribunal gate --rule` calls)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.client import scenario
from tests.client.conftest import Server

OTHER = "other-judge"


def _call(server: Server, method: str, url: str, token: str | None, **body: Any) -> Any:
    headers = {"Authorization": f"Token {token}"} if token else {}
    return server.http.request(method, url, headers=headers, **body)


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    """12 pairs with verdicts of two judges: `ci-judge`'s and a tie from the other."""
    made = scenario.generic_rows()
    for row in made:
        row["verdicts"].append({"judge": OTHER, "outcome_ab": "tie", "outcome_ba": "tie"})
    return made


@pytest.fixture
def audit(server: Server, rows: list[dict[str, Any]]) -> int:
    """An audit of the 12 pairs, both judges, no labels yet."""
    server.client.import_rows(rows, dataset=scenario.DATASET)
    built = scenario.create_audit(
        server.client,
        "two judges",
        judges=(scenario.JUDGE, OTHER),
        quotas={"low_margin": scenario.PAIRS},  # the judges split on every pair
    )
    return built.id


@pytest.mark.slow  # end to end, over 2 s (issue 10)
def test_it_checks_rules_for_a_named_judge_and_stores_nothing(
    server: Server, audit: int, rows: list[dict[str, Any]]
) -> None:
    scenario.label_as_judge(server.http, audit, scenario.PAIRS, rows)  # all as ci-judge chose
    url = f"/api/audits/{audit}/gate/check/"
    rules = ["lower(percent_agreement) >= 0.5"]
    for judge, status in ((scenario.JUDGE, "PASS"), (OTHER, "FAIL")):
        answer = _call(
            server, "POST", url, server.lead_token, json={"judge": judge, "rules": rules}
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert (body["status"], body["gate"], body["judge"]["name"]) == (status, None, judge)
        assert body["exit_code"] == {"PASS": 0, "FAIL": 1}[status]
        assert body["rules"][0]["rule"] == rules[0]
    stored = _call(server, "GET", f"/api/audits/{audit}/gate/", server.lead_token)
    assert stored.status_code == 404  # nothing was written


@pytest.mark.slow  # end to end, over 2 s (issue 10)
def test_it_checks_the_stored_gate_only_for_the_judge_it_is_about(
    server: Server, audit: int, rows: list[dict[str, Any]]
) -> None:
    scenario.label_as_judge(server.http, audit, scenario.PAIRS, rows)
    url = f"/api/audits/{audit}/gate/check/"
    missing = _call(server, "POST", url, server.lead_token, json={"judge": scenario.JUDGE})
    assert missing.status_code == 404
    assert missing.json() == {
        "detail": f"audit {audit} has no release gate yet: PUT one, or send rules"
    }

    [ci_judge] = [j for j in server.client.judges(scenario.DATASET) if j.name == scenario.JUDGE]
    gate = {"judge": ci_judge.id, "rules": ["upper(percent_agreement) < 0.5"]}
    put = _call(server, "PUT", f"/api/audits/{audit}/gate/", server.lead_token, json=gate)
    assert put.status_code == 200, put.text
    same = _call(server, "POST", url, server.lead_token, json={"judge": scenario.JUDGE})
    assert same.status_code == 200
    assert (same.json()["status"], same.json()["gate"]) == ("FAIL", put.json()["gate"])
    other = _call(server, "POST", url, server.lead_token, json={"judge": OTHER})
    assert other.status_code == 400
    assert other.json() == {
        "judge": [
            f"the stored gate of audit {audit} is about {scenario.JUDGE} v1, not {OTHER!r}; "
            f"send rules to check {OTHER!r}"
        ]
    }


def test_it_refuses_an_unknown_judge_or_rule_naming_the_field(server: Server, audit: int) -> None:
    url = f"/api/audits/{audit}/gate/check/"
    unknown = _call(
        server, "POST", url, server.lead_token, json={"judge": "gpt-9", "rules": ["lower(x) > 1"]}
    )
    assert unknown.status_code == 400
    assert unknown.json() == {
        "judge": [
            f"'gpt-9' is not a judge of audit {audit} (judges: {scenario.JUDGE} v1, {OTHER} v1)"
        ]
    }
    bad = _call(
        server,
        "POST",
        url,
        server.lead_token,
        json={
            "judge": scenario.JUDGE,
            "rules": ["lower(percent_agreement) >= 0.5", "lower(kappa) > 1"],
        },
    )
    assert bad.status_code == 400
    assert bad.json()["rules"][0].startswith("rule 2, metric: unknown metric 'kappa'")
    empty = _call(
        server, "POST", url, server.lead_token, json={"judge": scenario.JUDGE, "rules": []}
    )
    assert empty.status_code == 400 and "rules" in empty.json()
    absent = _call(
        server, "POST", "/api/audits/999999/gate/check/", server.lead_token, json={"judge": "x"}
    )
    assert absent.status_code == 404


def test_it_is_for_leads_only(server: Server, audit: int) -> None:
    url = f"/api/audits/{audit}/gate/check/"
    body = {"json": {"judge": scenario.JUDGE, "rules": ["lower(percent_agreement) >= 0.5"]}}
    annotator = scenario.token(server.http, scenario.ANNOTATOR)
    assert _call(server, "POST", url, annotator, **body).status_code == 403
    assert _call(server, "POST", url, None, **body).status_code == 401
