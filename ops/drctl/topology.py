"""Which region is which in a procedure: from the plan's roles, the region-control item and the
operator's --to."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ops.drctl import control
from ops.drctl.context import Context
from ops.drctl.errors import UsageError
from shared.names import ROLES


@dataclass(frozen=True)
class Sides:
    old_role: str  # the region writes are moving away from
    old_region: str
    new_role: str  # the region that will be active
    new_region: str


def role_for(ctx: Context, text: str) -> str:
    """`--to` accepts a role (primary/secondary) or a region name."""
    roles = ctx.region_roles()
    if text in roles:
        return text
    for role, region in roles.items():
        if region == text:
            return role
    raise UsageError(f"--to {text}: not a role ({', '.join(ROLES)}) nor a region of the plan")


def sides(ctx: Context, to: str | None, readings: Iterable[control.Reading]) -> Sides:
    roles = ctx.region_roles()
    if to is not None:
        new_role = role_for(ctx, to)
    else:
        current = control.newest(readings)
        named = [role for role, region in roles.items() if current and current.names(region)]
        if not named:
            state = current.active_region if current else "absent"
            raise UsageError(
                f"the region-control item names no active region ({state}), so drctl cannot "
                "tell which way to go: pass --to primary|secondary"
            )
        new_role = next(role for role in ROLES if role != named[0])
    old_role = next(role for role in ROLES if role != new_role)
    return Sides(old_role, roles[old_role], new_role, roles[new_role])
