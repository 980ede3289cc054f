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

from typing import Any, ClassVar

from django.contrib.auth.models import AnonymousUser
from django.db import models
from django.db.models import Q
from guardian.utils import get_group_obj_perms_model, get_user_obj_perms_model

from common.audit import SystemActor
from common.errors import DomainError, forbidden, not_found

ACTIONS = ("view", "change", "register", "approve", "deploy", "manage")


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


def has_global_perm(user: Any, root: type[models.Model], action: str) -> bool:
    if not _is_active_user(user):
        return False
    if user.is_superuser:
        return True
    return user.has_perm(f"{root._meta.app_label}.{codename_for(root, action)}")


class PermissionQuerySet(models.QuerySet):
    def visible_to(self, user: Any, action: str = "view") -> PermissionQuerySet:
        """Rows of this queryset on which ``user`` may perform ``action``."""
        root = root_model_of(self.model)
        if not _is_active_user(user) or isinstance(user, AnonymousUser):
            return self.none()
        if has_global_perm(user, root, action):
            return self
        codename = codename_for(root, action)
        user_grants = (
            get_user_obj_perms_model(root)
            .objects.filter(user=user, permission__codename=codename)
            .values("content_object_id")
        )
        group_grants = (
            get_group_obj_perms_model(root)
            .objects.filter(group__user=user, permission__codename=codename)
            .values("content_object_id")
        )
        path = self.model.permission_root  # type: ignore[attr-defined]
        key = f"{path}__pk__in" if path else "pk__in"
        return self.filter(Q(**{key: user_grants}) | Q(**{key: group_grants}))


PermissionManager = models.Manager.from_queryset(PermissionQuerySet)


def user_can(user: Any, action: str, obj: models.Model) -> bool:
    """May ``user`` perform ``action`` on ``obj``?

    A ``SystemActor`` (an operator's management command, a background job) is
    trusted: whoever runs it already holds the server's credentials.
    """
    if isinstance(user, SystemActor):
        return True
    root_obj = root_of(obj)
    root = type(root_obj)
    if has_global_perm(user, root, action):
        return True
    if not _is_active_user(user):
        return False
    return user.has_perm(f"{root._meta.app_label}.{codename_for(root, action)}", root_obj)


def require(user: Any, action: str, obj: models.Model) -> None:
    """Raise 403 unless ``user`` may perform ``action`` on ``obj``.

    Callers have already fetched ``obj`` through ``visible_to(user, "view")``,
    so a user who reaches this check may see the object.
    """
    if not user_can(user, action, obj):
        raise forbidden(action, str(obj))


def get_visible(queryset: PermissionQuerySet, user: Any, what: str, **lookup: Any) -> Any:
    """The one object matching ``lookup`` that ``user`` may view, or a 404 error."""
    try:
        return queryset.visible_to(user, "view").get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError):
        raise not_found(what) from None


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
