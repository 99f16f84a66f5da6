"""The REST API against its own OpenAPI schema (drf-spectacular), with schemathesis.

Every operation is called with generated inputs, authenticated as a lead with a DRF token;
no call may end in a server error and every response must match the schema. Seeded
(`derandomize`) and small (10 examples per operation), so it runs in CI in about a minute.
The fast suite fuzzes each operation with its examples; schemathesis's coverage phase (every
boundary and invalid value of every parameter: about 4,500 calls, 7 in 8 of the walk) runs
with the slow tests (`make test`, CI), from `test_api_schema_boundaries.py`.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.api_schema import (
    URLCONF,
    call_and_validate,
    generated,
    keep_test_connection,  # noqa: F401 (autouse fixture)
    lead_token,  # noqa: F401 (fixture)
    load_schema,
    walk,
)

schema = load_schema(generated, "examples", "fuzzing")


@pytest.mark.urls(URLCONF)
@schema.parametrize()
@walk
def test_it_answers_every_operation_without_server_errors_or_schema_violations(
    case: Any,
    lead_token: str,  # noqa: F811
) -> None:
    call_and_validate(case, lead_token)
