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


def token_client(user, *, days: float = 1):
    from datetime import timedelta

    from knox.models import AuthToken
    from rest_framework.test import APIClient

    _, token = AuthToken.objects.create(user=user, expiry=timedelta(days=days))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_with_a_token_authentication_rides_in_the_same_single_statement(
    staged, personas, django_assert_num_queries
):
    client = token_client(personas.viewer)
    first = client.get(URL)
    assert first.status_code == 200 and first["Content-Type"] == "application/json"
    with django_assert_num_queries(1) as captured:  # token, user, permission, generation
        second = client.get(URL, HTTP_ACCEPT="text/html")
    assert second.json() == first.json() and second.json()["version"]["number"] == 1
    assert "knox_authtoken" in captured.captured_queries[0]["sql"]


def test_the_token_path_still_refuses_what_it_must(staged, personas):
    from datetime import timedelta

    from django.utils import timezone
    from knox.models import AuthToken

    assert token_client(personas.viewer).get(URL).status_code == 200  # now cached
    assert token_client(personas.outsider).get(URL).status_code == 404
    assert token_client(personas.viewer).get("/api/v1/models/nope/aliases/x").status_code == 404

    expired = token_client(personas.viewer)
    AuthToken.objects.filter(user=personas.viewer).update(expiry=timezone.now() - timedelta(1))
    assert expired.get(URL).status_code == 401

    forged = token_client(personas.viewer)
    header = forged._credentials["HTTP_AUTHORIZATION"]
    forged.credentials(
        HTTP_AUTHORIZATION=header[:-4] + ("0000" if header[-4:] != "0000" else "1111")
    )
    assert forged.get(URL).status_code == 401

    active = token_client(personas.viewer)
    personas.viewer.is_active = False
    personas.viewer.save(update_fields=["is_active"])
    assert active.get(URL).status_code == 401

    owner = token_client(personas.owner)
    services.registered_model_revoke(actor=personas.owner, model=staged, user=personas.viewer)
    personas.viewer.is_active = True
    personas.viewer.save(update_fields=["is_active"])
    assert token_client(personas.viewer).get(URL).status_code == 404
    assert owner.get(URL).status_code == 200
