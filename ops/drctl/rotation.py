"""Where the database secrets rotate: in the region that holds their primary copy, by hosted
rotation functions in that region's VPC, against that region's cluster.

The plan has one rotation stack per region (infra-global/secrets-rotation.yaml). The primary's
is always deployed. The secondary's is `deploy: failover`: a replica secret cannot carry a
rotation schedule, so it can only exist while the secondary's copies are standalone, i.e. after
a failover promoted them.

- take_over (failover, in the survivor): the survivor's rotation stack is deployed through the
  same CloudFormation code as `drctl deploy`, its inputs read in the survivor's region only (the
  failed region may be down); where the survivor's stack is the always-deployed one (a failover
  back to the primary after a switchover), its rotation is turned on if it was paused.
- hand_back (failback, before the primary copy takes over): the survivor's rotation is
  cancelled and its stack deleted; restore_replication then turns the primary's back on.
"""

from __future__ import annotations

from ops.drctl import credentials
from ops.drctl.context import Context
from ops.drctl.deploy import deploy_stack, wait_policy
from ops.drctl.errors import DrctlError
from ops.drctl.plan import Plan, StackSpec

TEMPLATE = "secrets-rotation.yaml"


def stack_for(plan: Plan, role: str) -> StackSpec:
    found = [s for s in plan.stacks if s.template == TEMPLATE and s.role == role]
    if len(found) != 1:
        raise DrctlError(
            f"the plan has {len(found)} rotation stacks ({TEMPLATE}) for the {role} region, not one"
        )
    return found[0]


def take_over(ctx: Context, plan: Plan, role: str) -> list[str]:
    """Rotation runs in `role`'s region from now on (its copies are primary copies there)."""
    spec = stack_for(plan, role)
    if not spec.failover_only:
        notes = [f"{spec.name} is always deployed here"]
        notes += [
            credentials.resume_rotation(ctx, spec.region, name)
            for name in credentials.secret_names(ctx.env)
        ]
        return notes
    outcome = deploy_stack(ctx, plan, spec)
    return [
        f"{spec.name} ({spec.region}): {outcome.action}: hosted rotation in this region's VPC, "
        "against this region's cluster"
    ]


def hand_back(ctx: Context, plan: Plan, role: str) -> list[str]:
    """Rotation leaves `role`'s region (it rotated there while failed over)."""
    spec = stack_for(plan, role)
    if not spec.failover_only:
        return [f"{spec.name} stays (always deployed)"]
    notes = [
        credentials.pause_rotation(ctx, spec.region, name)
        for name in credentials.secret_names(ctx.env)
    ]
    deleted = ctx.cfn(spec.region).delete_stack(spec.name, wait_policy(spec))
    notes.append(f"{spec.name} ({spec.region}): {'deleted' if deleted else 'not there'}")
    return notes
