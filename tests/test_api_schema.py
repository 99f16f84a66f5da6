"""The REST API against its own OpenAPI schema (drf-spectacular), with schemathesis.

Every operation is called with generated inputs, authenticated as a lead with a DRF token;
no call may end in a server error and every response must match the schema. Seeded
(`derandomize`) and small (10 examples per operation), so it runs in CI in about a minute.
The fast suite fuzzes each operation with its examples; schemathesis's coverage phase (every
boundary and invalid value of every parameter: about 4,500 calls, 7 in 8 of the walk) runs
with the slow tests (`make test`, CI), from `test_api_schema_boundaries.py`.
"""

from __future__ import annotations

from tests.api_schema import keep_test_connection, lead_token, schema_test  # noqa: F401 (fixtures)

test_it_answers_every_operation_without_server_errors_or_schema_violations = schema_test(
    "test_it_answers_every_operation_without_server_errors_or_schema_violations",
    "examples",
    "fuzzing",
)
