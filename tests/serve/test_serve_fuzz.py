"""Schemathesis fuzzes every operation of the OpenAPI schema, with valid and invalid data (a bounded,
derandomized number of examples each): no answer is a 5xx, every error is one JSON line, every success a PNG
or JSON. Driven through Hypothesis directly (`as_strategy`), so it does not depend on schemathesis's pytest
plugin."""
from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the API fuzz test needs schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

EXAMPLES = 10


@pytest.fixture(scope="module")
def operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    ops = [result.ok() for result in schema.get_all_operations()]
    assert len(ops) >= 10
    return {f"{op.method.upper()} {op.path}": op for op in ops}


CALLS = []


def _check(case) -> None:
    response = case.call()
    CALLS.append(response.status_code)
    where = (case.method, case.formatted_path, case.query)
    assert response.status_code < 500, (where, response.text)
    if response.status_code >= 400:
        body = response.json()
        assert list(body) == ["error"] and "\n" not in body["error"], (where, body)
    else:
        ctype = response.headers.get("content-type") or [""]
        ctype = ctype[0] if isinstance(ctype, list) else ctype  # schemathesis keeps every header as a list
        assert ctype.split(";")[0] in ("application/json", "image/png"), (where, ctype)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(operations, mode):
    seen = []
    CALLS.clear()
    for name, op in sorted(operations.items()):
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy(generation_mode=mode))
        def fuzz(case):
            _check(case)

        try:
            fuzz()
        except Exception as e:
            if "Unsatisfiable" in type(e).__name__:  # no negative example exists for a parameterless operation
                continue
            raise
        seen.append(name)
    assert "GET /api/runs/{run}/sample.png" in seen and "POST /api/runs/{run}/translate" in seen
    assert len(CALLS) >= 5 * len(seen), len(CALLS)  # the fuzzer really sent requests
    if mode == GenerationMode.POSITIVE:
        assert CALLS.count(200) >= 20, CALLS  # valid requests were answered, not only refused
