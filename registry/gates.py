"""Hooks that other apps register to guard registry writes.

The registry knows nothing of approvals or monitoring: governance registers
gates here (in its AppConfig.ready) and the registry services call them.

- Alias gates: ``alias_set`` calls every gate before a *protected* alias moves.
- Model-change gates: ``registered_model_update`` calls every gate, under the
  model's row lock, before it writes (governance refuses a lowered risk tier
  that was not approved, and a team change under a review that needs an
  independent validator).
- Data holds: which versions' logged data another app still needs (governance:
  versions under open review); monitoring's retention sweep keeps their batches.

A gate raises ``DomainError`` saying exactly what is missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.models import ModelVersion, RegisteredModel

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


ModelChangeGate = Callable[..., None]
_model_change_gates: list[ModelChangeGate] = []


def register_model_change_gate(gate: ModelChangeGate) -> ModelChangeGate:
    """Register ``gate(*, actor, model, changes, authority)``; usable as a decorator.

    ``model`` is the locked row as it is before the change, ``changes`` the new
    values by field name. ``authority`` is whatever the caller of
    ``registered_model_update`` passed to apply a change that another app governs
    (e.g. governance's approved risk-tier change); the registry never looks at it.
    """
    if gate not in _model_change_gates:
        _model_change_gates.append(gate)
    return gate


def check_model_change_gates(
    *, actor: Any, model: RegisteredModel, changes: dict[str, Any], authority: Any = None
) -> None:
    for gate in _model_change_gates:
        gate(actor=actor, model=model, changes=changes, authority=authority)


DataHold = Callable[[], Iterable[int]]
_data_holds: list[DataHold] = []


def register_data_hold(hold: DataHold) -> DataHold:
    """Register ``hold() -> version ids`` whose logged data must be kept for now."""
    if hold not in _data_holds:
        _data_holds.append(hold)
    return hold


def held_version_ids() -> set[int]:
    held: set[int] = set()
    for hold in _data_holds:
        held.update(hold())
    return held


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
