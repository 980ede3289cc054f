from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from common.auth import token_issue


class Command(BaseCommand):
    help = "Print a new API token for a (service) account. Only its hash is stored."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--days", type=int, default=30, help="validity in days (default 30)")

    def handle(self, *args: Any, username: str, days: int, **options: Any) -> None:
        if not 1 <= days <= 366:
            raise CommandError("--days must be between 1 and 366")
        user = get_user_model().objects.filter(username=username, is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {username!r}")
        with transaction.atomic():
            token, expiry = token_issue(user=user, ttl=timedelta(days=days), reason="issue_token")
        self.stdout.write(token)
        self.stderr.write(f"expires {expiry.isoformat()}")
