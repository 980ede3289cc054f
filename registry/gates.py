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


# Guards run on *every* alias move or deletion, protected or not, before the
# rights and gates: another app that owns an alias (lifecycle's environments own
# ``model@<environment>``) refuses moves that do not come through its service.
AliasGuard = Callable[..., None]
_alias_guards: list[AliasGuard] = []


def register_alias_guard(guard: AliasGuard) -> AliasGuard:
    """Register ``guard(*, actor, model, alias_name)``; usable as a decorator."""
    if guard not in _alias_guards:
        _alias_guards.append(guard)
    return guard


def check_alias_guards(*, actor: Any, model: Any, alias_name: str) -> None:
    for guard in _alias_guards:
        guard(actor=actor, model=model, alias_name=alias_name)
