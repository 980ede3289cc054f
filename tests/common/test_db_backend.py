"""The PostgreSQL backend skips Django's health probe only on a warm connection."""

from __future__ import annotations

import pytest
from django.db import connection, connections

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL backend"),
]


def probes_during(calls: int, *, idle_limit: float, idle_between: float = 0.0) -> int:
    """Run ``calls`` request-like cycles; count the health probes (SELECT 1)."""
    import time

    probes = 0
    wrapper = type(connections["default"])
    real_is_usable = wrapper.is_usable

    def counting(self):
        nonlocal probes
        probes += 1
        return real_is_usable(self)

    saved = connection.settings_dict.get("HEALTH_CHECK_IDLE_SECONDS")
    saved_checks = connection.health_check_enabled
    connection.settings_dict["HEALTH_CHECK_IDLE_SECONDS"] = idle_limit
    connection.health_check_enabled = True
    wrapper.is_usable = counting
    try:
        for _ in range(calls):
            connection.close_if_unusable_or_obsolete()  # request_started
            with connection.cursor() as cursor:
                cursor.execute("SELECT 42")
                assert cursor.fetchone() == (42,)
            connection.close_if_unusable_or_obsolete()  # request_finished
            time.sleep(idle_between)
    finally:
        wrapper.is_usable = real_is_usable
        connection.settings_dict["HEALTH_CHECK_IDLE_SECONDS"] = saved
        connection.health_check_enabled = saved_checks
    return probes


def test_a_connection_in_steady_use_is_not_probed_before_every_request():
    assert type(connections["default"]).__module__ == "common.db.postgresql.base"
    connection.ensure_connection()
    assert probes_during(20, idle_limit=60) <= 1


def test_an_idle_connection_is_probed_as_django_would():
    connection.ensure_connection()
    assert probes_during(5, idle_limit=0.01, idle_between=0.03) >= 4
    assert probes_during(5, idle_limit=0) == 5  # limit 0: Django's own behaviour


def test_a_dead_connection_found_by_the_probe_is_replaced():
    connection.ensure_connection()
    connection.settings_dict["HEALTH_CHECK_IDLE_SECONDS"] = 0
    connection.health_check_enabled = True
    try:
        connection.close_if_unusable_or_obsolete()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
        connection.connection.close()  # the server side went away
        connection.close_if_unusable_or_obsolete()
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (new_pid,) = cursor.fetchone()
        assert new_pid != pid
    finally:
        connection.settings_dict["HEALTH_CHECK_IDLE_SECONDS"] = 1.0
