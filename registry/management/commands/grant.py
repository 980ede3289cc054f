from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from common.audit import SystemActor
from common.errors import DomainError
from registry.models import RegisteredModel
from registry.services import ROLES, registered_model_grant


class Command(BaseCommand):
    help = "Grant a role on a model to a user or a group (an operator's tool; audited)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("model")
        parser.add_argument("role", choices=sorted(ROLES))
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user")
        who.add_argument("--group")

    def handle(
        self, *args: Any, model: str, role: str, user: str | None, group: str | None, **opts: Any
    ) -> None:
        target = RegisteredModel.objects.filter(name=model).first()
        if target is None:
            raise CommandError(f"no model {model!r}")
        holder_user = get_user_model().objects.filter(username=user).first() if user else None
        holder_group = Group.objects.filter(name=group).first() if group else None
        if holder_user is None and holder_group is None:
            raise CommandError(f"no such {'user' if user else 'group'}")
        try:
            registered_model_grant(
                actor=SystemActor("manage.py grant"),
                model=target,
                role=role,
                user=holder_user,
                group=holder_group,
            )
        except DomainError as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"granted {role} on {model} to {user or group}")
