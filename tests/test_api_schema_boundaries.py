"""The REST API's boundary and invalid values: schemathesis's coverage phase over the schema of
`tests/api_schema.py` (about 4,000 calls), with the slow tests.

A module of its own because schemathesis builds every case of the phase when the test is
collected (2 s for each test process); `tests/conftest.py` leaves it uncollected in runs that
deselect slow tests (`make test-fast`).
"""

from __future__ import annotations

import pytest

from tests.api_schema import keep_test_connection, lead_token, schema_test  # noqa: F401 (fixtures)

test_it_answers_boundary_and_invalid_values_without_server_errors_or_violations = pytest.mark.slow(
    schema_test(
        "test_it_answers_boundary_and_invalid_values_without_server_errors_or_violations",
        "coverage",
    )
)
