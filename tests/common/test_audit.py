"""The audit chain: one function appends, every link verifies, PostgreSQL refuses edits."""

from __future__ import annotations

import hashlib
import json

import pytest
from django.db import DatabaseError, connection, transaction

from common.audit import GENESIS_HASH, SystemActor, audit_record, compute_hash, event_payload
from common.context import request_context
from common.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_each_event_links_to_the_previous_hash_and_hashes_its_canonical_form(personas):
    with transaction.atomic(), request_context("req-1"):
        first = audit_record(
            actor=personas.owner,
            action="test.one",
            object_type="x",
            object_id="1",
            after={"b": 1, "a": [1.5, None, "é"]},
        )
        second = audit_record(
            actor=SystemActor("job#4"),
            action="test.two",
            object_type="x",
            object_id="1",
            before={"k": float("nan")},
        )
    assert first.request_id == "req-1"
    assert second.prev_hash == first.hash
    assert second.actor == "system:job#4" and second.actor_id is None
    assert second.before == {"k": None}
    # recompute from the stored row with nothing but json + sha256
    stored = AuditEvent.objects.get(pk=first.pk)
    payload = {
        "seq": stored.seq,
        "occurred_at": stored.occurred_at.isoformat(timespec="microseconds"),
        "actor_id": stored.actor_id,
        "actor": stored.actor,
        "action": stored.action,
        "object_type": stored.object_type,
        "object_id": stored.object_id,
        "object_repr": stored.object_repr,
        "before": stored.before,
        "after": stored.after,
        "request_id": stored.request_id,
        "prev_hash": stored.prev_hash,
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(canonical.encode()).hexdigest() == stored.hash
    assert compute_hash(event_payload(stored)) == stored.hash


def test_the_first_event_starts_from_the_genesis_hash(personas):
    with transaction.atomic():
        event = audit_record(actor=None, action="test.first", object_type="x", object_id="1")
    assert event.seq == 1
    assert event.prev_hash == GENESIS_HASH


def test_an_event_rolled_back_with_its_change_leaves_no_gap(personas):
    with pytest.raises(RuntimeError), transaction.atomic():
        audit_record(actor=None, action="test.lost", object_type="x", object_id="1")
        raise RuntimeError("the change failed")
    with transaction.atomic():
        event = audit_record(actor=None, action="test.kept", object_type="x", object_id="1")
    assert event.seq == 1 and event.prev_hash == GENESIS_HASH


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
def test_postgresql_refuses_update_and_delete_on_the_trail(personas):
    with transaction.atomic():
        event = audit_record(actor=None, action="test.x", object_type="x", object_id="1")
    for statement in (
        "UPDATE common_auditevent SET action = 'forged' WHERE id = %s",
        "DELETE FROM common_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [event.pk])
    assert AuditEvent.objects.get(pk=event.pk).action == "test.x"


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs real row locks")
def test_a_write_whose_reference_is_locked_audits_without_deadlocking_the_locker():
    """One transaction adds a row referencing a group (its foreign key is checked at
    commit), then audits; another holds the group FOR UPDATE, then audits. Before the
    deferred checks ran ahead of the chain head's lock, PostgreSQL found a deadlock."""
    import threading
    import time

    from django.contrib.auth.models import Group, User
    from django.db import connections

    group = Group.objects.create(name="locked")
    member = User.objects.create_user("member")
    reached_audit = threading.Event()
    outcomes: dict[str, object] = {}

    def adds_a_member() -> None:
        try:
            with transaction.atomic():
                member.groups.add(group)  # auth_user_groups -> auth_group, checked at commit
                reached_audit.set()
                audit_record(actor=SystemActor("t"), action="test.member", object_id="1")
            outcomes["member"] = "committed"
        except DatabaseError as exc:
            outcomes["member"] = exc
        finally:
            connections.close_all()

    def locks_the_group() -> None:
        try:
            with transaction.atomic():
                Group.objects.select_for_update().get(pk=group.pk)
                worker.start()
                assert reached_audit.wait(10)
                time.sleep(0.5)  # the other is in audit_record now
                audit_record(actor=SystemActor("t"), action="test.group", object_id="2")
            outcomes["locker"] = "committed"
        except DatabaseError as exc:
            outcomes["locker"] = exc
        finally:
            connections.close_all()

    worker = threading.Thread(target=adds_a_member)
    locker = threading.Thread(target=locks_the_group)
    locker.start()
    locker.join(30)
    worker.join(30)
    assert outcomes == {"member": "committed", "locker": "committed"}
    actions = list(AuditEvent.objects.order_by("seq").values_list("action", flat=True))
    assert actions[-2:] == ["test.group", "test.member"]  # the locker went first
