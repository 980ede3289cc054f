from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand

from governance.audit_trail import export_jsonl


class Command(BaseCommand):
    help = "Write the audit trail as JSON Lines (see docs/audit.md to verify it without ModelGate)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--output", "-o", default="-", help="file path, or - for stdout")

    def handle(self, *args: Any, output: str = "-", **options: Any) -> None:
        if output == "-":
            count = export_jsonl(sys.stdout)
        else:
            with open(output, "w", encoding="utf-8") as handle:
                count = export_jsonl(handle)
        self.stderr.write(f"exported {count} events")
