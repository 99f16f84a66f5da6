"""The REST API's boundary and invalid values: schemathesis's coverage phase over the schema of
`tests/api_schema.py` (about 4,000 calls), with the slow tests.

A module of its own because schemathesis builds every case of the phase when the test is
collected (2 s for each test process); `tests/conftest.py` leaves it uncollected in runs that
deselect slow tests (`make test-fast`).
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

boundaries = load_schema(generated, "coverage")


@pytest.mark.slow
@pytest.mark.urls(URLCONF)
@boundaries.parametrize()
@walk
def test_it_answers_boundary_and_invalid_values_without_server_errors_or_violations(
    case: Any,
    lead_token: str,  # noqa: F811
) -> None:
    call_and_validate(case, lead_token)
