"""`drctl teardown`: remove an environment completely, in an order that works, idempotently.

 1. fence both regions (control item "none", event rules off, processors at concurrency 0)
 2. delete the DNS stack (health checks, failover records, the EventBridge endpoint), then
    the stacks that run functions in the VPC (the regional SAM stacks, secret rotation)
 3. wait until the functions' VPC ENIs are released (they block subnet/SG deletion)
 4. detach the Aurora members (secondary first, each in its region), delete the global cluster
 5. delete the Aurora clusters (final snapshot unless --skip-final-snapshot, deletion
    protection off first), then the Aurora stacks (secondary first)
 6. empty every bucket (all versions and delete markers)
 7. turn the tables' deletion protection off (each replica), final on-demand backups
 8. delete the remaining stacks in reverse plan order (params, secrets, buckets, data, ...);
    before the key stacks, delete the tables, buckets and regional queues a DeletionPolicy:
    Retain left behind;
    then keys, peering routes, peering, networks
 9. the CMKs: deletion scheduled with --skip-final-snapshot; otherwise kept (the final
    snapshots and backups are encrypted with them: without the key they cannot be restored)
10. delete drctl's own artifacts buckets
Every step tolerates what an earlier, interrupted run already removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial

from botocore.exceptions import ClientError

from ops.drctl import aurora, names, storage
from ops.drctl.artifacts import artifacts_bucket
from ops.drctl.context import Context
from ops.drctl.deploy import wait_policy
from ops.drctl.errors import EXIT_OK, Refused
from ops.drctl.fence import fence_all
from ops.drctl.plan import ROLES, Plan, StackSpec
from ops.drctl.template import load_template
from ops.drctl.waiting import WaitPolicy, poll

ENI_WAIT = WaitPolicy(delay=30, max_attempts=90)  # Lambda may take 20-40 min to free them
_BUCKET_TYPES = ("AWS::S3::Bucket",)
_TABLE_TYPES = ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table")
_CLUSTER_TYPES = ("AWS::RDS::DBCluster",)
_KEY_TYPES = ("AWS::KMS::Key",)
_FUNCTION_TYPES = ("AWS::Lambda::Function", "AWS::Serverless::Function")
# Deleted by drctl before their stack: CloudFormation may retain them if it trips over that.
_AURORA_GONE = frozenset({"AWS::RDS::DBCluster", "AWS::RDS::DBInstance", "AWS::RDS::GlobalCluster"})


@dataclass(frozen=True)
class TeardownOptions:
    skip_final_snapshot: bool = False
    allow_prod: bool = False
    yes: bool = False


@dataclass
class Inventory:
    """What to clean besides the stacks: contract names plus what the stacks say they own."""

    buckets: dict[str, str] = field(default_factory=dict)  # name -> region
    tables: set[str] = field(default_factory=set)
    clusters: dict[str, set[str]] = field(default_factory=dict)  # stack id -> identifiers
    keys: dict[str, str] = field(default_factory=dict)  # key id -> region


def _is(spec: StackSpec, word: str) -> bool:
    return word in spec.id or word in spec.template_stem


def _runs_functions(plan: Plan, spec: StackSpec) -> bool:
    """Stacks whose functions hold VPC ENIs: SAM stacks, and templates with a transform (SAM,
    hosted secret rotation) or Lambda functions."""
    if spec.is_sam:
        return True
    document = load_template(plan.template_path(spec)).document
    resources = (document.get("Resources") or {}).values()
    return "Transform" in document or any(
        isinstance(r, dict) and r.get("Type") in _FUNCTION_TYPES for r in resources
    )


@dataclass(frozen=True)
class StackOrder:
    """Which stacks go when; each group in reverse plan order."""

    front: list[StackSpec]  # DNS first, then the stacks that run functions (before ENI wait)
    aurora: list[StackSpec]  # after their clusters are deleted
    rest: list[StackSpec]  # params, secrets, buckets, data, peering, networks, keys...


def stack_order(plan: Plan) -> StackOrder:
    backwards = list(reversed(plan.stacks))
    dns = [s for s in backwards if _is(s, "dns") and not s.is_sam]
    front = dns + [s for s in backwards if s not in dns and _runs_functions(plan, s)]
    aurora_stacks = [s for s in backwards if _is(s, "aurora") and s not in front]
    rest = [s for s in backwards if s not in front and s not in aurora_stacks]
    return StackOrder(front, aurora_stacks, rest)


class Teardown:
    def __init__(self, ctx: Context, plan: Plan, options: TeardownOptions) -> None:
        self.ctx = ctx
        self.plan = plan
        self.options = options
        self.stamp = datetime.now(UTC).strftime("%Y%m%d%H%M")
        self.kept: list[str] = []
        self.order = stack_order(plan)
        self.inventory = self._take_inventory()

    def _take_inventory(self) -> Inventory:
        plan, inventory = self.plan, Inventory()
        for role in ROLES:
            region = plan.regions[role]
            inventory.buckets[names.documents_bucket(role, plan.env, plan.account)] = region
        inventory.tables.update(names.tables(plan.env))
        for spec in plan.stacks:
            if spec.is_sam:
                continue
            resources = self.ctx.cfn(spec.region).resources(spec.name)
            for item in resources:
                physical, kind = item.get("PhysicalResourceId"), item.get("ResourceType")
                if not physical:
                    continue
                if kind in _BUCKET_TYPES:
                    inventory.buckets[physical] = spec.region
                elif kind in _TABLE_TYPES:
                    inventory.tables.add(physical)
                elif kind in _CLUSTER_TYPES:
                    inventory.clusters.setdefault(spec.id, set()).add(physical)
                elif kind in _KEY_TYPES:
                    inventory.keys[physical] = spec.region
        return inventory

    def run(self) -> None:
        step = self.ctx.console.step
        step("1. fence both regions")
        fence_all(self.ctx, self.plan.regions, actor="drctl teardown")
        step("2. delete the DNS stack, then the stacks running functions (SAM, rotation)")
        for spec in self.order.front:
            self._delete_stack(spec)
        step("3. wait for the functions' VPC network interfaces to be released")
        self._wait_for_lambda_enis()
        step(f"4. dismantle the global cluster {names.global_cluster(self.plan.env)}")
        members = aurora.dismantle_global_cluster(
            self.ctx, self.plan.regions["primary"], names.global_cluster(self.plan.env)
        )
        step("5. delete the Aurora clusters and stacks (secondary first)")
        self._delete_aurora(members)
        step("6. empty the buckets (every version and delete marker)")
        for bucket, region in self.inventory.buckets.items():
            storage.stop_access_logging(self.ctx, region, bucket)
        for bucket, region in self.inventory.buckets.items():
            count = storage.empty_bucket(self.ctx, region, bucket)
            self.ctx.console.progress(
                f"    s3://{bucket}: " + ("absent" if count < 0 else f"{count} deleted")
            )
        step("7. release the tables (deletion protection off, final backups)")
        self._release_tables()
        step("8. delete the remaining stacks")
        self._delete_remaining()
        step("9. the KMS keys")
        self._settle_keys()
        step("10. delete drctl's artifacts buckets")
        for role in ROLES:
            self._remove_bucket(artifacts_bucket(self.plan, role), self.plan.regions[role])

    def _delete_stack(self, spec: StackSpec, gone: frozenset[str] = frozenset()) -> None:
        cfn = self.ctx.cfn(spec.region)
        deleted = cfn.delete_stack(spec.name, wait_policy(spec), gone_types=gone)
        self.ctx.console.progress(
            f"    {spec.name} ({spec.region}): {'deleted' if deleted else 'absent'}"
        )

    def _lambda_security_groups(self, region: str) -> list[str]:
        try:
            value = self.ctx.aws.client("ssm", region).get_parameter(
                Name=names.lambda_security_group_parameter(self.plan.env)
            )["Parameter"]["Value"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
                raise
            return []
        return [str(value)]

    def _lambda_enis(self, region: str, groups: list[str]) -> list[str]:
        ec2 = self.ctx.aws.client("ec2", region)
        found = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": groups}])[
            "NetworkInterfaces"
        ]
        return [
            eni["NetworkInterfaceId"]
            for eni in found
            if eni.get("InterfaceType") == "lambda"
            or str(eni.get("Description", "")).startswith("AWS Lambda VPC ENI")
        ]

    def _no_lambda_enis(self, region: str, groups: list[str]) -> bool:
        return not self._lambda_enis(region, groups)

    def _wait_for_lambda_enis(self) -> None:
        for region in self.plan.region_list():
            groups = self._lambda_security_groups(region)
            if not groups:
                self.ctx.console.progress(f"    {region}: no Lambda security group published")
                continue
            poll(
                self.ctx.console,
                self.ctx.sleep,
                f"Lambda ENIs in {region} ({', '.join(groups)}) to be released",
                partial(self._no_lambda_enis, region, groups),
                ENI_WAIT,
            )
            self.ctx.console.progress(f"    {region}: no Lambda ENIs left")

    def _delete_aurora(self, members: list[aurora.ClusterRef]) -> None:
        for spec in self.order.aurora:
            refs = {
                aurora.ClusterRef(spec.region, ident)
                for ident in self.inventory.clusters.get(spec.id, set())
            }
            refs |= {m for m in members if m.region == spec.region}
            for ref in sorted(refs, key=lambda r: r.identifier):
                snapshot = (
                    None
                    if self.options.skip_final_snapshot
                    else f"{ref.identifier}-final-{self.stamp}"
                )
                outcome = aurora.delete_cluster(self.ctx, ref, snapshot)
                self.ctx.console.progress(f"    cluster {ref.identifier} ({ref.region}): {outcome}")
            self._delete_stack(spec, _AURORA_GONE)

    def _release_tables(self) -> None:
        primary = self.plan.regions["primary"]
        for table in sorted(self.inventory.tables):
            for region in self.plan.region_list():
                if storage.unprotect_table(self.ctx, region, table):
                    self.ctx.console.progress(f"    {table} ({region}): deletion protection off")
            if not self.options.skip_final_snapshot:
                backup = storage.backup_table(
                    self.ctx, primary, table, f"{table}-final-{self.stamp}"
                )
                if backup:
                    self.ctx.console.progress(f"    {table}: final backup {backup}")

    def _delete_remaining(self) -> None:
        swept = False
        for spec in self.order.rest:
            if _is(spec, "keys") and not swept:
                self._sweep_retained()
                swept = True
            self._delete_stack(spec)
        if not swept:
            self._sweep_retained()

    def _sweep_retained(self) -> None:
        """Delete the data a DeletionPolicy: Retain (or a stack never made) left behind."""
        primary, secondary = self.plan.regions["primary"], self.plan.regions["secondary"]
        for table in sorted(self.inventory.tables):
            storage.delete_global_table(self.ctx, table, primary, [secondary])
        for bucket, region in self.inventory.buckets.items():
            self._remove_bucket(bucket, region)
        for role in ROLES:
            region = self.plan.regions[role]
            for queue in names.queues(role, self.plan.env).values():
                if storage.delete_queue(self.ctx, region, queue) == "deleted":
                    self.ctx.console.progress(f"    queue {queue} ({region}): deleted")

    def _remove_bucket(self, bucket: str, region: str) -> None:
        if storage.remove_bucket(self.ctx, region, bucket) == "deleted":
            self.ctx.console.progress(f"    s3://{bucket}: deleted")

    def _settle_keys(self) -> None:
        days = 30 if self.plan.env == "prod" else 7
        for key_id, region in sorted(self.inventory.keys.items()):
            if self.options.skip_final_snapshot:
                outcome = storage.schedule_key_deletion(self.ctx, region, key_id, days)
            else:
                outcome = storage.keep_key(self.ctx, region, key_id)
                if outcome != "absent":
                    self.kept.append(f"KMS key {key_id} ({region})")
            self.ctx.console.progress(f"    key {key_id} ({region}): {outcome}")

    def report(self) -> None:
        plan = self.plan
        self.ctx.console.result(f"teardown --env {plan.env}: done (account {plan.account})")
        for name in self.kept:
            self.ctx.console.result(
                f"  kept {name}: the final snapshots and backups are encrypted with it; once "
                "they are no longer needed, schedule its deletion (aws kms schedule-key-deletion)"
            )


def _confirm(ctx: Context, plan: Plan) -> None:
    prompt = (
        f"This deletes every dr-payment stack and all data of environment {plan.env!r} "
        f"(account {plan.account}, {', '.join(plan.region_list())}).\n"
        f"Type the environment name to continue: "
    )
    try:
        answer = ctx.ask(prompt)
    except EOFError:
        answer = ""
    if answer.strip() != plan.env:
        raise Refused("teardown not confirmed: nothing was changed")


def guard(env: str, options: TeardownOptions) -> None:
    if env == "prod" and not options.allow_prod:
        raise Refused("refusing to tear down prod without --i-mean-it-delete-prod")


def run(ctx: Context, options: TeardownOptions) -> int:
    guard(ctx.env, options)  # before anything touches AWS
    plan = ctx.plan()
    if not options.yes:
        _confirm(ctx, plan)
    teardown = Teardown(ctx, plan, options)
    teardown.run()
    teardown.report()
    return EXIT_OK
