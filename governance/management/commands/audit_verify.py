from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from governance.audit_trail import verify_chain


class Command(BaseCommand):
    help = "Recompute the audit chain and report the first broken link (exit 1 if broken)."

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        verdict = verify_chain()
        seconds = time.monotonic() - started
        if not verdict.ok:
            raise CommandError(
                f"audit chain BROKEN at seq {verdict.broken_seq}: {verdict.problem} "
                f"({verdict.checked} events verified before it)"
            )
        rate = verdict.checked / seconds if seconds else 0
        self.stdout.write(
            f"audit chain OK: {verdict.checked} events verified in {seconds:.2f}s "
            f"({rate:,.0f} events/s)"
        )
