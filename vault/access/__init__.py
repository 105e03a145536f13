"""Access: principals and tokens, roles and purposes from policy files, masked field views."""

from vault.access.policy import ACTIONS, Decision, Policy, Purpose, Role
from vault.access.principals import Principal

__all__ = ["ACTIONS", "Decision", "Policy", "Principal", "Purpose", "Role"]
