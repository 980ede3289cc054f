"""Schemathesis against the project's own OpenAPI schema: no operation answers a 5xx.

Every operation of ``/api/schema/`` gets generated requests, valid by the
schema and not (wrong types, missing fields, odd headers), sent through the
WSGI application as a superuser's token. Half of them name the seeded model,
version, dataset, monitor, alert and audit in their path, so that they get
past the 404 into the parsers, serializers and services; the other half keep
schemathesis's own path values (huge numbers, odd names). Bounded: a few
hundred requests in all, well under two minutes on two cores.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
from django.core import signals
from django.core.handlers.wsgi import WSGIHandler
from django.db import close_old_connections
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode

from common.auth import token_issue
from tests.security.requests_support import World, seed_world

pytestmark = [pytest.mark.django_db, pytest.mark.schemathesis]

# A deterministic run in CI; SCHEMATHESIS_EXAMPLES=100 SCHEMATHESIS_RANDOM=1 explores more.
EXAMPLES_PER_OPERATION = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "8"))


@pytest.fixture(name="world")
def world_fixture(personas: Any) -> World:
    return seed_world(personas)


@pytest.fixture
def wsgi_app() -> Iterator[WSGIHandler]:
    """The project's WSGI application on the test's connection (inside its transaction).

    Django closes the database connection when a request ends; its test client
    disconnects that handler for the duration of a request, and so does this.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield WSGIHandler()
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def world_path_parameters(world: World, path: str) -> dict[str, Any]:
    """Path values naming the seeded objects (the rest stay generated)."""
    values: dict[str, Any] = {
        "name": world.model.name,
        "model_name": world.model.name,
        "number": world.version.number,
        "audit_id": world.audit.pk,
        "alias": "staging",
        "seq": 1,
    }
    owners = {
        "/alerts/": world.alert.pk,
        "/datasets/": world.dataset.pk,
        "/monitors/": world.monitor.pk,
        "/fairness-audits/": world.audit.pk,
    }
    for fragment, pk in owners.items():
        if f"{fragment}{{id}}" in path:
            values["id"] = pk
    return {name: value for name, value in values.items() if f"{{{name}}}" in path}


def aim_body(case: Any, world: World) -> None:
    """Body fields that name another object name a seeded one (in place, as hooks do)."""
    if not isinstance(case.body, dict):
        return
    names = {
        "model": world.model.name,
        "dataset": world.dataset.pk,
        "version": world.version.number,
        "name": "fuzzed",  # a valid slug, so that uploads get past the name to the file
    }
    for field, value in names.items():
        if field in case.body:
            case.body[field] = value


def test_no_operation_answers_a_server_error(world: World, wsgi_app: WSGIHandler) -> None:
    token, _expiry = token_issue(user=world.root)
    schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", wsgi_app)
    auth = {"Authorization": f"Token {token}"}
    sent = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        fixed = world_path_parameters(world, operation.path)
        strategies = []
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies.append(operation.as_strategy(mode, headers=auth).map(lambda c: (c, False)))
            aimed = operation.as_strategy(mode, path_parameters=fixed or None, headers=auth)
            strategies.append(aimed.map(lambda c: (c, True)))

        @hypothesis.settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=not os.environ.get("SCHEMATHESIS_RANDOM"),
            # No shrinking: the first 5xx fails the test with schemathesis's report
            # (status, body and a curl command that reproduces it).
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis.given(drawn=st.one_of(strategies))
        def exercise(drawn: tuple[Any, bool]) -> None:
            nonlocal sent
            case, aim = drawn
            if aim:
                aim_body(case, world)
            sent += 1
            case.call_and_validate(checks=[not_a_server_error])

        exercise()
    assert sent >= 200  # a few hundred requests over every operation
