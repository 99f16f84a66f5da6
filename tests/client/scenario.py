"""An audit made through the REST API only, as a pipeline and its annotators would make it.

Pairs and verdicts go in as a `generic` file, the annotator labels through the queue API, so
these tests build on the API's contract rather than on the models (which move between apps).
`http` is any httpx client whose base URL is the site: a live server's, or the WSGI app's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tribunal_client import Audit, Client

JUDGE = "ci-judge"
DATASET = "ci-pairs"
PASSWORD = "correct-horse-battery"  # tests.factories.UserFactory's
ANNOTATOR = "ana-annotator"  # the `annotator` persona of tests/conftest.py
PAIRS = 12


def generic_rows(n: int = PAIRS) -> list[dict[str, Any]]:
    """``n`` pairs with one verdict each by JUDGE, consistent in both orders: it prefers the
    right answer (A) in two pairs of three and B otherwise."""
    rows = []
    for i in range(n):
        prefers = "B" if i % 3 == 0 else "A"
        rows.append(
            {
                "pair_id": f"ci-{i}",
                "prompt": f"Question {i}: what is {i} + {i}?",
                "response_a": f"{i} + {i} = {2 * i}.",
                "response_b": f"I am not sure what {i} + {i} is.",
                "model_a": "model-a",
                "model_b": "model-b",
                "category": "math",
                "verdicts": [
                    {
                        "judge": JUDGE,
                        "model_id": "ci-judge-model",
                        "outcome_ab": prefers,
                        "outcome_ba": prefers,
                    }
                ],
            }
        )
    return rows


def create_audit(
    client: Client, name: str, judges: tuple[str, ...] = (JUDGE,), **options: Any
) -> Audit:
    """An audit of every pair of DATASET, one label per item, ANNOTATOR labelling."""
    return client.create_audit(
        name=name,
        dataset=DATASET,
        judges=judges,
        size=PAIRS,
        overlap_k=1,
        annotators=[ANNOTATOR],
        seed=1,
        **options,
    )


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def token(http: httpx.Client, username: str) -> str:
    answer = http.post("/api/token/", data={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return str(answer.json()["token"])


def label_as_judge(
    http: httpx.Client, audit_id: int, count: int, rows: list[dict[str, Any]]
) -> int:
    """The annotator labels up to ``count`` items, always choosing the text the judge chose
    (the items come blind, by screen side, so the side is found from the text)."""
    chosen = {
        row["prompt"]: row[
            "response_a" if row["verdicts"][0]["outcome_ab"] == "A" else "response_b"
        ]
        for row in rows
    }
    auth = {"Authorization": f"Token {token(http, ANNOTATOR)}"}
    done = 0
    while done < count:
        held = http.post(f"/api/audits/{audit_id}/next/", headers=auth)
        if held.status_code == 204:
            break
        item = held.json()
        answer = {
            "choice": "left" if item["left"] == chosen[item["prompt"]] else "right",
            "submission_key": item["submission_key"],
            "time_spent_ms": 3000,
        }
        sent = http.post(f"/api/assignments/{item['id']}/label/", headers=auth, json=answer)
        assert sent.status_code == 201, sent.text
        done += 1
    return done
