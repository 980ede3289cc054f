"""Verifying and exporting the audit trail (the algorithm is in common.audit and docs/audit.md)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

from common.audit import GENESIS_HASH, compute_hash, event_payload
from common.models import AuditEvent

BATCH = 5000


def _events(after_seq: int = 0) -> Iterator[AuditEvent]:
    """Every event in seq order, in keyset-paginated batches (constant memory)."""
    last = after_seq
    while True:
        batch = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq")[:BATCH])
        if not batch:
            return
        yield from batch
        last = batch[-1].seq


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
    for event in _events():
        if expected_seq is not None and event.seq != expected_seq:
            return Verdict(checked, event.seq, f"gap: expected seq {expected_seq}")
        if event.prev_hash != expected_prev:
            return Verdict(checked, event.seq, "prev_hash does not match the previous event's hash")
        if compute_hash(event_payload(event)) != event.hash:
            return Verdict(checked, event.seq, "hash does not match the event's content")
        expected_prev = event.hash
        expected_seq = event.seq + 1
        checked += 1
    return Verdict(checked)


def export_jsonl(out: IO[str]) -> int:
    """One JSON object per line: the hashed fields plus ``hash``, in seq order."""
    count = 0
    for event in _events():
        record: dict[str, Any] = event_payload(event)
        record["hash"] = event.hash
        out.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        count += 1
    return count
