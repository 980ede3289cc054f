"""The alias-resolution cache: fast, never stale after a change, never bypassing rights."""

from __future__ import annotations

import pytest

from registry import services
from tests.conftest import client_for, ready_version

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/credit/aliases/staging"


@pytest.fixture
def staged(model, personas):
    ready_version(model, personas.bot)
    ready_version(model, personas.bot)
    services.alias_set(actor=personas.bot, model=model, name="staging", version_number=1)
    return model


def test_a_repeated_resolution_costs_one_query(staged, personas, django_assert_num_queries):
    client = client_for(personas.viewer)
    first = client.get(URL).json()
    with django_assert_num_queries(1):  # permission check and generation, together
        second = client.get(URL).json()
    assert first == second and second["version"]["number"] == 1


def test_moving_the_alias_is_seen_at_once(staged, personas):
    client = client_for(personas.viewer)
    assert client.get(URL).json()["version"]["number"] == 1
    services.alias_set(actor=personas.bot, model=staged, name="staging", version_number=2)
    assert client.get(URL).json()["version"]["number"] == 2
    services.alias_delete(actor=personas.bot, model=staged, name="staging")
    assert client.get(URL).status_code == 404


def test_editing_the_version_refreshes_the_payload(staged, personas):
    client = client_for(personas.viewer)
    client.get(URL)
    version = staged.versions.get(number=1)
    services.model_version_update(actor=personas.owner, version=version, description="documented")
    assert client.get(URL).json()["version"]["description"] == "documented"


def test_a_revoked_user_is_refused_even_when_the_payload_is_cached(staged, personas):
    assert client_for(personas.viewer).get(URL).status_code == 200
    services.registered_model_revoke(actor=personas.owner, model=staged, user=personas.viewer)
    assert client_for(personas.viewer).get(URL).status_code == 404
    assert client_for(personas.outsider).get(URL).status_code == 404


def test_a_group_grant_and_a_global_grant_both_open_the_door(staged, personas):
    from django.contrib.auth.models import Group, Permission, User

    assert client_for(personas.outsider).get(URL).status_code == 404
    group = Group.objects.create(name="readers")
    services.registered_model_grant(actor=personas.owner, model=staged, role="viewer", group=group)
    personas.outsider.groups.add(group)
    assert client_for(User.objects.get(pk=personas.outsider.pk)).get(URL).status_code == 200
    personas.compliance.user_permissions.add(
        Permission.objects.get(codename="view_registeredmodel")
    )
    assert client_for(User.objects.get(pk=personas.compliance.pk)).get(URL).status_code == 200
