"""Seed the audit chain head and make the audit table append-only on PostgreSQL."""

from django.db import migrations

GENESIS_HASH = "0" * 64

APPEND_ONLY_SQL = """
CREATE OR REPLACE FUNCTION common_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'common_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER common_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON common_auditevent
    FOR EACH ROW EXECUTE FUNCTION common_auditevent_append_only();
"""

DROP_SQL = """
DROP TRIGGER IF EXISTS common_auditevent_no_update_delete ON common_auditevent;
DROP FUNCTION IF EXISTS common_auditevent_append_only();
"""


def seed_head(apps, schema_editor):
    apps.get_model("common", "AuditChainHead").objects.get_or_create(
        pk=1, defaults={"seq": 0, "last_hash": GENESIS_HASH}
    )


def append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(APPEND_ONLY_SQL, params=None)


def drop_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [("common", "0001_initial")]

    operations = [
        migrations.RunPython(seed_head, migrations.RunPython.noop),
        migrations.RunPython(append_only, drop_append_only),
    ]
