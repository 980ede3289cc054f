"""Verifying and exporting the audit trail (the algorithm is in common.audit and docs/audit.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from common.audit import GENESIS_HASH, HASHED_FIELDS, compute_hash, format_timestamp
from common.models import AuditEvent

BATCH = 5000


def _events(after_seq: int = 0) -> Iterator[tuple[dict[str, Any], str]]:
    """(hashed payload, stored hash) of every event in seq order.

    Keyset-paginated batches of plain rows (constant memory, no model
    instances); the payload is what ``common.audit.event_payload`` builds.
    """
    last = after_seq
    while True:
        batch = list(
            AuditEvent.objects.filter(seq__gt=last)
            .order_by("seq")
            .values_list(*HASHED_FIELDS, "hash")[:BATCH]
        )
        if not batch:
            return
        for row in batch:
            payload = dict(zip(HASHED_FIELDS, row[:-1], strict=True))
            payload["occurred_at"] = format_timestamp(payload["occurred_at"])
            yield payload, row[-1]
        last = batch[-1][0]


@dataclass
class Verdict:
    checked: int
    broken_seq: int | None = None
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_seq is None


def verify_chain() -> Verdict:
    """Recompute every hash and link; stop at the first broken one."""
    expected_prev = GENESIS_HASH
    expected_seq = None
    checked = 0
    for payload, stored in _events():
        seq = payload["seq"]
        if expected_seq is not None and seq != expected_seq:
            return Verdict(checked, seq, f"gap: expected seq {expected_seq}")
        if payload["prev_hash"] != expected_prev:
            return Verdict(checked, seq, "prev_hash does not match the previous event's hash")
        if compute_hash(payload) != stored:
            return Verdict(checked, seq, "hash does not match the event's content")
        expected_prev = stored
        expected_seq = seq + 1
        checked += 1
    return Verdict(checked)


def export_jsonl(out: IO[str]) -> int:
    """One JSON object per line: the hashed fields plus ``hash``, in seq order."""
    count = 0
    for payload, stored in _events():
        record: dict[str, Any] = {**payload, "hash": stored}
        out.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        count += 1
    return count
