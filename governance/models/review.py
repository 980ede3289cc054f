"""Approval policies, reviews, sign-offs, evidence items and notifications."""

__all__: list[str] = []
