"""Fairness audits, mitigation runs and model cards."""

__all__: list[str] = []
