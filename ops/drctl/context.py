"""What every command needs: the environment, AWS clients, output, and the injectable seams."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ops.drctl.aws import ClientFactory
from ops.drctl.cfn import CloudFormation
from ops.drctl.console import Console
from ops.drctl.errors import PlanError
from ops.drctl.plan import ROLES, Plan, load_plan, read_regions
from ops.drctl.sam import CommandRunner, run_command

# The repository this package lives in (editable install): <root>/ops/drctl/context.py
DEFAULT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PLAN = DEFAULT_ROOT / "infra-global" / "stacks.yaml"
PRIMARY_REGION_DEFAULT = "us-east-1"


@dataclass
class Context:
    env: str
    aws: ClientFactory
    console: Console = field(default_factory=Console)
    plan_path: Path = DEFAULT_PLAN
    runner: CommandRunner = run_command
    sleep: Callable[[float], None] = time.sleep
    ask: Callable[[str], str] = input
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _plan: Plan | None = None

    def plan(self, *, sts_region: str | None = None) -> Plan:
        """The plan with this account's id, asked of STS in `sts_region` (default: the primary
        region; a failover asks the surviving region, the primary may be down)."""
        if self._plan is None:
            account = self.aws.account_id(sts_region or self.home_region())
            self._plan = load_plan(self.plan_path, env=self.env, account=account)
        return self._plan

    def home_region(self) -> str:
        """The primary region as the plan says, read without needing the account id."""
        if self._plan is not None:
            return self._plan.regions["primary"]
        return read_regions(self.plan_path).get("primary", PRIMARY_REGION_DEFAULT)

    def cfn(self, region: str) -> CloudFormation:
        return CloudFormation(
            self.aws.client("cloudformation", region), region, self.console, self.sleep
        )

    def regions_by_role(self) -> dict[str, str]:
        plan = self.plan()
        return {role: plan.regions[role] for role in ROLES}

    def region_roles(self) -> dict[str, str]:
        """role -> region from the plan, WITHOUT loading it: no STS call, which would go to the
        primary region, the one that may be down when this is needed."""
        regions = self._plan.regions if self._plan is not None else read_regions(self.plan_path)
        if set(regions) != set(ROLES):
            raise PlanError(f"{self.plan_path}: `regions:` must name primary and secondary")
        return {role: regions[role] for role in ROLES}

    def stamp(self) -> str:
        """Now, UTC, to the second (what drctl writes into items and reports)."""
        return self.now().astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
