"""Hooks that other apps register to guard alias moves.

The registry knows nothing of approvals: governance registers a gate here (in
its AppConfig.ready) and ``alias_set`` calls every gate before a *protected*
alias moves. A gate raises ``DomainError`` saying exactly what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.models import ModelVersion

AliasGate = Callable[..., None]
_alias_gates: list[AliasGate] = []


def register_alias_gate(gate: AliasGate) -> AliasGate:
    """Register ``gate(*, actor, alias_name, version)``; usable as a decorator."""
    if gate not in _alias_gates:
        _alias_gates.append(gate)
    return gate


def check_alias_gates(*, actor: Any, alias_name: str, version: ModelVersion) -> None:
    for gate in _alias_gates:
        gate(actor=actor, alias_name=alias_name, version=version)
