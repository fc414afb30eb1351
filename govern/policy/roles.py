"""Who may manage whom: the one rule member changes and token revocation share."""

from __future__ import annotations


def may_manage(actor_role: str, target_role: str) -> bool:
    """Owners manage everyone; admins manage everyone but owners, and cannot make owners."""
    if actor_role == "owner":
        return True
    return actor_role == "admin" and target_role != "owner"
