"""Object permissions: one root per aggregate, ``visible_to`` on every query.

Permissions are granted (with django-guardian's direct foreign-key tables) on
an aggregate root, e.g. ``RegisteredModel``; every model below it names the
path to its root in ``permission_root`` and inherits the root's grants. A
model-level (global) permission, as held by the ``auditors`` group, covers every
object.

Actions are project-wide words; the root maps each to a permission codename in
``PERMISSION_ACTIONS``. A user who cannot *view* an object gets 404 for it; one
who can view it but lacks the action gets 403.
"""

from __future__ import annotations

import functools
from typing import Any, ClassVar

from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.db import connections, models, router
from django.db.models import Exists, Q
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from common.audit import SystemActor
from common.errors import DomainError, forbidden, not_found

ACTIONS = ("view", "change", "register", "approve", "deploy", "manage", "serve")


class PermissionRootMixin(models.Model):
    """Mixed into an aggregate root; maps actions to its permission codenames."""

    PERMISSION_ACTIONS: ClassVar[dict[str, str]]
    permission_root: ClassVar[str] = ""

    class Meta:
        abstract = True


def root_model_of(model: type[models.Model]) -> type[models.Model]:
    path = getattr(model, "permission_root", None)
    if path is None:
        raise TypeError(f"{model.__name__} declares no permission_root")
    current = model
    for part in filter(None, path.split("__")):
        current = current._meta.get_field(part).related_model  # type: ignore[assignment]
    return current


def root_of(obj: models.Model) -> models.Model:
    current: Any = obj
    for part in filter(None, type(obj).permission_root.split("__")):  # type: ignore[attr-defined]
        current = getattr(current, part)
    return current


def codename_for(root: type[models.Model], action: str) -> str:
    try:
        return root.PERMISSION_ACTIONS[action]  # type: ignore[attr-defined]
    except KeyError:
        raise ValueError(f"unknown action {action!r} for {root.__name__}") from None


def _is_active_user(user: Any) -> bool:
    return bool(user is not None and user.is_authenticated and user.is_active)


def can_globally(user: Any, perm: str) -> bool:
    """A model-level permission such as ``registry.add_registeredmodel``."""
    if isinstance(user, SystemActor):
        return True
    return _is_active_user(user) and user.has_perm(perm)


@functools.cache
def permission_id(app_label: str, codename: str) -> int:
    """Primary key of a permission, looked up once per process.

    Permission rows are created by migrate and never change while the process
    runs; the cache is cleared after every migrate/flush (see CommonConfig).
    """
    return Permission.objects.values_list("pk", flat=True).get(
        content_type__app_label=app_label, codename=codename
    )


class PermissionQuerySet(models.QuerySet):
    def visible_to(self, user: Any, action: str = "view") -> PermissionQuerySet:
        """Rows of this queryset on which ``user`` may perform ``action``.

        One SQL statement: model-level grants (directly or through a group, as
        the auditors group holds) and object grants on the aggregate root
        (directly or through a group), all by permission id so that no
        subquery joins the permission or content-type tables.
        """
        root = root_model_of(self.model)
        if not _is_active_user(user) or isinstance(user, AnonymousUser):
            return self.none()
        if user.is_superuser:
            return self
        pid = permission_id(root._meta.app_label, codename_for(root, action))
        my_groups = User.groups.through.objects.filter(user_id=user.pk).values("group_id")
        user_grants = (
            get_user_obj_perms_model(root)
            .objects.filter(user_id=user.pk, permission_id=pid)
            .values("content_object_id")
        )
        group_grants = (
            get_group_obj_perms_model(root)
            .objects.filter(group_id__in=my_groups, permission_id=pid)
            .values("content_object_id")
        )
        user_global = User.user_permissions.through.objects.filter(
            user_id=user.pk, permission_id=pid
        )
        group_global = Group.permissions.through.objects.filter(
            group_id__in=my_groups, permission_id=pid
        )
        path = self.model.permission_root  # type: ignore[attr-defined]
        key = f"{path}__pk__in" if path else "pk__in"
        return self.filter(
            Exists(user_global)
            | Exists(group_global)
            | Q(**{key: user_grants})
            | Q(**{key: group_grants})
        )


PermissionManager = models.Manager.from_queryset(PermissionQuerySet)


@functools.cache
def grant_condition_sql(
    root: type[models.Model], root_pk_sql: str = "%s", user_sql: str = "%s"
) -> str:
    """A SQL boolean: "user U holds permission P on the root object whose pk is X".

    ``root_pk_sql`` is a column of the enclosing query (e.g. ``m.id``) or the
    placeholder ``%s``; ``user_sql`` likewise (e.g. ``u.id`` when the user row
    is read by the same statement). Pass the parameters from
    ``grant_condition_params`` with the same choices.
    Covers model-level grants (to the user or a group) and object grants (to
    the user or a group), by permission id: no join on auth_permission.
    """
    user_objs = get_user_obj_perms_model(root)._meta.db_table
    group_objs = get_group_obj_perms_model(root)._meta.db_table
    user_perms = User.user_permissions.through._meta.db_table
    group_perms = Group.permissions.through._meta.db_table
    memberships = User.groups.through._meta.db_table
    return f"""(
        EXISTS (SELECT 1 FROM {user_perms} WHERE user_id = {user_sql} AND permission_id = %s)
        OR EXISTS (SELECT 1 FROM {group_perms} gp JOIN {memberships} gm ON gm.group_id = gp.group_id
                   WHERE gm.user_id = {user_sql} AND gp.permission_id = %s)
        OR EXISTS (SELECT 1 FROM {user_objs} uo
                   WHERE uo.user_id = {user_sql} AND uo.permission_id = %s
                   AND uo.content_object_id = {root_pk_sql})
        OR EXISTS (SELECT 1 FROM {group_objs} go JOIN {memberships} om ON om.group_id = go.group_id
                   WHERE om.user_id = {user_sql} AND go.permission_id = %s
                   AND go.content_object_id = {root_pk_sql})
    )"""  # noqa: S608 - table names come from model metadata, values are parameters


def grant_condition_params(
    user: Any, root: type[models.Model], action: str, root_pk: Any = None
) -> list[Any]:
    """Parameters for ``grant_condition_sql``: ``user`` None when it used a
    column for the user, ``root_pk`` when it used ``%s`` for the root."""
    pid = permission_id(root._meta.app_label, codename_for(root, action))
    uid = [] if user is None else [user.pk]
    pk = [] if root_pk is None else [root_pk]
    return [*uid, pid, *uid, pid, *uid, pid, *pk, *uid, pid, *pk]


def root_pk_of(obj: models.Model) -> Any:
    """Primary key of the object's aggregate root, without loading the root."""
    parts = [p for p in type(obj).permission_root.split("__") if p]  # type: ignore[attr-defined]
    if not parts:
        return obj.pk
    current: Any = obj
    for part in parts[:-1]:
        current = getattr(current, part)
    return getattr(current, f"{parts[-1]}_id")


def can_on_root(user: Any, action: str, root: type[models.Model], root_pk: Any) -> bool:
    """May ``user`` perform ``action`` on the root object ``root_pk``? One query.

    A ``SystemActor`` (an operator's management command, a background job) is
    trusted: whoever runs it already holds the server's credentials.
    """
    if isinstance(user, SystemActor):
        return True
    if not _is_active_user(user) or isinstance(user, AnonymousUser):
        return False
    if user.is_superuser:
        return True
    with connections[router.db_for_read(root)].cursor() as cursor:
        cursor.execute(
            "SELECT 1 WHERE " + grant_condition_sql(root),
            grant_condition_params(user, root, action, root_pk),
        )
        return cursor.fetchone() is not None


def user_can(user: Any, action: str, obj: models.Model) -> bool:
    """May ``user`` perform ``action`` on ``obj`` (through its aggregate root)?"""
    return can_on_root(user, action, root_model_of(type(obj)), root_pk_of(obj))


def require(user: Any, action: str, obj: models.Model) -> None:
    """Raise 403 unless ``user`` may perform ``action`` on ``obj``.

    Callers have already fetched ``obj`` through ``visible_to(user, "view")``,
    so a user who reaches this check may see the object.
    """
    if not user_can(user, action, obj):
        raise forbidden(action, str(obj))


def get_visible(queryset: models.QuerySet, user: Any, what: str, **lookup: Any) -> Any:
    """The one object matching ``lookup`` that ``user`` may view, or a 404 error.

    Fetches the row plainly and then asks one constant permission query: on a
    detail lookup that is cheaper than filtering through ``visible_to``.
    """
    try:
        obj = queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise not_found(what) from None
    if not user_can(user, "view", obj):
        raise not_found(what)
    return obj


__all__ = [
    "ACTIONS",
    "DomainError",
    "PermissionManager",
    "PermissionQuerySet",
    "PermissionRootMixin",
    "get_visible",
    "require",
    "root_model_of",
    "root_of",
    "user_can",
]
