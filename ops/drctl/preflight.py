"""`drctl preflight`: what would make a deploy fail or collide, found before it starts.

Checks, in both regions: credentials and reachability; stacks of the plan in a failed or busy
state; resources that already use our names but no stack of the plan owns (global tables,
documents buckets, the global cluster); unbuilt or stale SAM artifacts; parameters a template
requires (no Default) that neither the plan nor --param supplies; the chosen AZ IDs (zones of
the region, every interface endpoint service and Lambda offered there); reserved concurrency
against the account's Lambda quota.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from botocore.exceptions import BotoCoreError, ClientError

from ops.drctl import aurora, capacity, names, sam, storage
from ops.drctl.cfn import FAILED_STATES, StackState
from ops.drctl.context import Context
from ops.drctl.errors import EXIT_OK, EXIT_PROBLEMS, DrctlError, PlanError
from ops.drctl.params import ParamOverride, assemble, missing_parameters
from ops.drctl.plan import ROLES, OutputRef, Plan, StackSpec, read_regions
from ops.drctl.template import ParameterDecl, load_template


@dataclass(frozen=True)
class Problem:
    where: str
    what: str
    fix: str


class Preflight:
    def __init__(self, ctx: Context, overrides: tuple[ParamOverride, ...]) -> None:
        self.ctx = ctx
        self.overrides = overrides
        self.problems: list[Problem] = []
        self.states: dict[str, StackState | None] = {}
        self.owned: set[str] = set()
        self.ssm_checked: dict[str, set[str]] = {}
        self.published: set[tuple[str, str]] = set()  # (region, SSM path) the plan creates
        self.sam_values: dict[str, dict[str, str]] = {}  # stack id -> what deploy would pass

    def add(self, where: str, what: str, fix: str) -> None:
        self.problems.append(Problem(where, what, fix))

    def run(self) -> list[Problem]:
        if not self._reachable():
            return self.problems
        try:
            plan = self.ctx.plan()
        except PlanError as exc:
            self.add("plan", str(exc), "fix infra-global/stacks.yaml (see notes/contract.md)")
            return self.problems
        self._stacks(plan)
        self._tables(plan)
        self._buckets(plan)
        self._global_cluster(plan)
        self._engine_versions(plan)
        self._sam_build(plan)
        self._parameters(plan)
        self._zones(plan)
        self._concurrency(plan)
        return self.problems

    def _reachable(self) -> bool:
        regions = read_regions(self.ctx.plan_path) or {"primary": "us-east-1"}
        ok = True
        for region in dict.fromkeys(regions.values()):
            try:
                self.ctx.aws.client("sts", region).get_caller_identity()
                self.ctx.aws.client("cloudformation", region).list_exports()
            except (BotoCoreError, ClientError) as exc:
                ok = False
                self.add(
                    region,
                    f"AWS not reachable with these credentials: {exc}",
                    "check --profile / AWS_PROFILE, credentials, network (AWS_ENDPOINT_URL for "
                    "the sandbox)",
                )
        return ok

    def _stacks(self, plan: Plan) -> None:
        for spec in plan.stacks:
            cfn = self.ctx.cfn(spec.region)
            state = cfn.describe(spec.name)
            self.states[spec.id] = state
            if state is None:
                continue
            self.owned.update(r.get("PhysicalResourceId", "") for r in cfn.resources(spec.name))
            if state.status in FAILED_STATES:
                fix = (
                    "`drctl deploy` deletes and recreates it (a failed create holds nothing)"
                    if state.status == "ROLLBACK_COMPLETE"
                    else "look at its events, repair, or delete it, then deploy"
                )
                self.add(
                    spec.region, f"stack {spec.name} is {state.status} {state.status_reason}", fix
                )
            elif state.status.endswith("_IN_PROGRESS") and state.status != "REVIEW_IN_PROGRESS":
                self.add(spec.region, f"stack {spec.name} is busy ({state.status})", "wait for it")

    def _tables(self, plan: Plan) -> None:
        for table in names.tables(plan.env):
            for region in plan.region_list():
                if table in self.owned or storage.describe_table(self.ctx, region, table) is None:
                    continue
                self.add(
                    region,
                    f"DynamoDB table {table} exists but no stack of the plan owns it",
                    "delete it (after saving what it holds) or deploy another --env; the global "
                    "table cannot be created over it",
                )

    def _buckets(self, plan: Plan) -> None:
        s3 = self.ctx.aws.client("s3", plan.regions["primary"])
        pattern = names.documents_bucket_pattern(plan.env)
        for bucket in s3.list_buckets().get("Buckets", []):
            name = bucket["Name"]
            if fnmatch.fnmatchcase(name, pattern) and name not in self.owned:
                self.add(
                    "s3",
                    f"bucket {name} matches {pattern} but no stack of the plan owns it",
                    "empty and delete it (every version), or deploy another --env",
                )
        for role in ROLES:
            name = names.documents_bucket(role, plan.env, plan.account)
            try:
                s3.head_bucket(Bucket=name)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "403":
                    self.add("s3", f"bucket name {name} belongs to another account", "rename")

    def _global_cluster(self, plan: Plan) -> None:
        identifier = names.global_cluster(plan.env)
        for region in plan.region_list():
            rds = self.ctx.aws.client("rds", region)
            if identifier in self.owned or aurora.describe_global(rds, identifier) is None:
                continue
            self.add(
                region,
                f"Aurora global cluster {identifier} exists but no stack of the plan owns it",
                "detach its members and delete it (drctl teardown does it), or deploy another "
                "--env",
            )
            return  # one global cluster, visible from both regions

    def _engine_versions(self, plan: Plan) -> None:
        """Members of the global cluster on different versions (a half-done upgrade), or on
        another version than the Aurora stacks record (a rebuilt secondary would not join)."""
        identifier = names.global_cluster(plan.env)
        if identifier not in self.owned:
            return
        members = aurora.member_versions(self.ctx, plan.regions["primary"], identifier)
        versions = sorted({m.version for m in members})
        if len(versions) > 1:
            listed = ", ".join(f"{m.cluster.identifier} {m.version}" for m in members)
            self.add(
                plan.regions["primary"],
                f"the members of {identifier} run different engine versions ({listed}); "
                "a managed switchover or failover needs the same version",
                'finish the upgrade, secondary first (docs/deploy.md, "Upgrading Aurora")',
            )
            return
        for spec in plan.stacks:
            state = self.states.get(spec.id)
            recorded = state.parameters.get("EngineVersion") if state else None
            if recorded and versions and recorded != versions[0]:
                self.add(
                    spec.region,
                    f"{spec.name} records EngineVersion {recorded} but the clusters run "
                    f"{versions[0]}: a cluster rebuilt from it would not match",
                    f"record it: drctl deploy --param aurora-primary.EngineVersion={versions[0]}",
                )

    def _sam_build(self, plan: Plan) -> None:
        if not any(spec.is_sam for spec in plan.stacks):
            return
        problem = sam.build_problem(plan.root)
        if problem:
            self.add("local", f"SAM artifacts: {problem}", "run `make build`")

    def _parameters(self, plan: Plan) -> None:
        self.published = published_parameters(plan)
        for spec in plan.stacks:
            if spec.is_sam:
                self._sam_parameters(plan, spec)
                continue
            try:
                template = load_template(plan.template_path(spec))
                # references resolve at deploy time: only their presence matters here
                given = {k: v if isinstance(v, str) else "" for k, v in spec.parameters.items()}
                params = assemble(spec, template, given, self.overrides, self.states.get(spec.id))
            except PlanError as exc:
                self.add("plan", str(exc), "fix the plan or the template")
                continue
            if params.missing:
                self.add(spec.region, *missing_parameters(spec, params.missing))
            literal = {
                key: value
                for key, value in params.values.items()
                if not isinstance(spec.parameters.get(key), OutputRef)
            }
            self._check_values(spec.name, spec.region, template.parameters, literal)

    def _sam_parameters(self, plan: Plan, spec: StackSpec) -> None:
        source = plan.root / "template.yaml"
        if not source.is_file():
            return
        values = self._sam_values(plan, spec)
        if values is not None:
            self.sam_values[spec.id] = values
            self._check_values(spec.name, spec.region, load_template(source).parameters, values)

    def _sam_values(self, plan: Plan, spec: StackSpec) -> dict[str, str] | None:
        """What drctl deploy would pass this regional stack (references count as given)."""
        given = {k: v if isinstance(v, str) else "" for k, v in spec.parameters.items()}
        try:
            return sam.sam_parameters(
                spec, root=plan.root, env=plan.env, given=given, overrides=self.overrides
            )
        except DrctlError as exc:
            self.add("plan", str(exc), "fix the plan's parameters or --param for this stack")
            return None

    def _zones(self, plan: Plan) -> None:
        """Each network stack's AZ IDs: zones of its region, offering every interface endpoint
        service the template creates and Lambda (functions run in those subnets)."""
        for spec in plan.stacks:
            if spec.is_sam:
                continue
            template = load_template(plan.template_path(spec))
            decl = template.parameters.get(AZ_IDS)
            if decl is None:
                continue
            given = {k: v for k, v in spec.parameters.items() if isinstance(v, str)}
            try:
                values = assemble(spec, template, given, self.overrides, self.states.get(spec.id))
            except PlanError:
                continue  # _parameters reported it
            chosen = values.values.get(AZ_IDS, decl.default or "")
            count_decl = template.parameters.get(AZ_COUNT)
            count = int(values.values.get(AZ_COUNT, (count_decl.default if count_decl else 0)) or 0)
            az_ids = decl.items(chosen)[: count or None] if chosen else []
            fix = f"choose others: --param {spec.id}.{AZ_IDS}=id1,id2,id3 (or edit the plan)"
            if len(az_ids) < count:
                self.add(
                    spec.region,
                    f"{spec.name}: {AZ_COUNT}={count} but {AZ_IDS} names {len(az_ids)} zone(s)",
                    fix,
                )
                continue
            services = [*capacity.interface_services(template.document, spec.region)]
            services.append(capacity.lambda_service(spec.region))
            report = capacity.zone_report(self.ctx.aws.client("ec2", spec.region), az_ids, services)
            if report.unknown:
                self.add(
                    spec.region,
                    f"{spec.name}: {AZ_IDS} {', '.join(report.unknown)}: no available zone "
                    f"of {spec.region} has that ID (available: {', '.join(report.offered)})",
                    fix,
                )
            for service, lacking in report.missing.items():
                what = (
                    f"Lambda is not offered in {report.label(lacking)} (the {service} endpoint "
                    "service does not list it): functions with a subnet there fail to create"
                    if service == capacity.lambda_service(spec.region)
                    else f"interface endpoint service {service} is not offered in "
                    f"{report.label(lacking)}: the endpoint fails to create in that subnet"
                )
                self.add(spec.region, f"{spec.name}: {what}", fix)

    def _concurrency(self, plan: Plan) -> None:
        """Reserved concurrency of the regional stacks against each region's Lambda quota."""
        by_region: dict[str, list[tuple[StackSpec, list[capacity.Reservation]]]] = {}
        for spec in plan.stacks:
            if not spec.is_sam or not (plan.root / "template.yaml").is_file():
                continue
            values = self.sam_values.get(spec.id)
            if values is None:
                continue  # its parameters are already reported as a problem
            template = sam.sam_template(plan.root)
            wanted = capacity.reservations(template.document, values, template.parameters)
            by_region.setdefault(spec.region, []).append((spec, wanted))
        for region, stacks in by_region.items():
            wanted = [r for _, rs in stacks for r in rs]
            if not wanted:
                continue
            verdict = capacity.concurrency_verdict(self.ctx.aws.client("lambda", region), wanted)
            if verdict.fits:
                continue
            parts = ", ".join(f"{r.logical_id} {r.amount}" for r in wanted)
            knobs = sorted(
                {f"{spec.id}.{r.parameter}" for spec, rs in stacks for r in rs if r.parameter}
            )
            self.add(
                region,
                f"{', '.join(s.name for s, _ in stacks)} reserve{'s' if len(stacks) == 1 else ''} "
                f"{verdict.wanted} concurrent executions ({parts}); the account's Lambda quota "
                f"here is {verdict.limit} with {verdict.unreserved} unreserved, and Lambda keeps "
                f"{capacity.MIN_UNRESERVED} unreserved: the deploy would fail ('decreases "
                "account's UnreservedConcurrentExecution below its minimum value')",
                f"request a quota of at least {verdict.quota_needed}: aws service-quotas "
                f"request-service-quota-increase --region {region} --service-code lambda "
                f"--quota-code {capacity.LAMBDA_CONCURRENCY_QUOTA} --desired-value "
                f"{max(verdict.quota_needed, 1000)} (docs/deploy.md, prerequisites); or, for a "
                f"dev account, reserve less: " + " ".join(f"--param {knob}=N" for knob in knobs),
            )

    def _check_values(
        self, stack: str, region: str, declared: dict[str, ParameterDecl], values: dict[str, str]
    ) -> None:
        """Values CloudFormation would reject, and SSM parameters named but not there."""
        for decl in declared.values():
            value = values.get(decl.name, decl.default)
            if value is None:
                continue
            if decl.is_ssm_path:
                self._ssm_exists(stack, region, decl.name, value)
            elif decl.name in values and (why := decl.violation(value)):
                self.add(region, f"{stack}: {why}", "use a value the template allows")

    def _ssm_exists(self, stack: str, region: str, parameter: str, path: str) -> None:
        if path in self.ssm_checked.setdefault(region, set()):
            return
        self.ssm_checked[region].add(path)
        try:
            self.ctx.aws.client("ssm", region).get_parameter(Name=path)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
                raise
            if (region, path) in self.published:
                return  # a stack of the plan publishes it
            self.add(
                region,
                f"SSM parameter {path} (for {stack} {parameter}) does not exist",
                f"create it first: aws ssm put-parameter --region {region} --type String "
                f"--name {path} --value ... (docs/deploy.md, prerequisites)",
            )


AZ_IDS = "AvailabilityZoneIds"
AZ_COUNT = "AzCount"
_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:]+)\}")


def published_parameters(plan: Plan) -> set[tuple[str, str]]:
    """(region, name) of the SSM parameters the plan's templates create, where the name is a
    literal or a !Sub over literal plan parameters (e.g. /dr-payment/${Environment}/...)."""
    found: set[tuple[str, str]] = set()
    for spec in plan.stacks:
        if spec.is_sam:
            continue
        template = load_template(plan.template_path(spec))
        literals = {k: v for k, v in spec.parameters.items() if isinstance(v, str)}
        for resource in (template.document.get("Resources") or {}).values():
            if not isinstance(resource, dict) or resource.get("Type") != "AWS::SSM::Parameter":
                continue
            name = (resource.get("Properties") or {}).get("Name")
            if isinstance(name, dict):
                name = name.get("Fn::Sub")
            if not isinstance(name, str):
                continue
            resolved = _substitute(name, literals)
            if resolved is not None:
                found.add((spec.region, resolved))
    return found


def _substitute(text: str, literals: dict[str, str]) -> str | None:
    """A !Sub string over known values, or None if it needs anything else."""
    if any(name not in literals for name in _SUB_VARIABLE.findall(text)):
        return None
    return _SUB_VARIABLE.sub(lambda match: literals[match.group(1)], text)


def run(ctx: Context, overrides: tuple[ParamOverride, ...] = ()) -> int:
    problems = Preflight(ctx, overrides).run()
    if not problems:
        ctx.console.result(f"preflight --env {ctx.env}: no problems found")
        return EXIT_OK
    ctx.console.result(f"preflight --env {ctx.env}: {len(problems)} problem(s)")
    for problem in problems:
        ctx.console.result(f"  PROBLEM [{problem.where}] {problem.what}")
        ctx.console.result(f"      fix: {problem.fix}")
    return EXIT_PROBLEMS
