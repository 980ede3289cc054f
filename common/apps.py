from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate

AUDITORS_GROUP = "auditors"


def ensure_auditors_group(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """The auditors group may view every model and change none.

    Runs after every migrate (permissions are created by post_migrate), so a new
    app's models are covered without a hand-written migration.
    """
    from django.contrib.auth.models import Group, Permission

    group, _ = Group.objects.using(using).get_or_create(name=AUDITORS_GROUP)
    view_perms = Permission.objects.using(using).filter(codename__startswith="view_")
    group.permissions.add(*view_perms)


def ensure_audit_chain_head(sender: Any, using: str = "default", **kwargs: Any) -> None:
    from common.audit import ensure_chain_head

    ensure_chain_head(using)


def forget_permission_ids(sender: Any, **kwargs: Any) -> None:
    """migrate (or a test flush) may recreate permission rows with new ids."""
    from common.permissions import permission_id

    permission_id.cache_clear()


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Common: audit trail and jobs"

    def ready(self) -> None:
        from common import schema  # noqa: F401  (registers the OpenAPI auth scheme)

        post_migrate.connect(ensure_auditors_group, dispatch_uid="auditors-group")
        post_migrate.connect(ensure_audit_chain_head, sender=self, dispatch_uid="audit-chain-head")
        post_migrate.connect(forget_permission_ids, dispatch_uid="forget-permission-ids")
