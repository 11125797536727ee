"""`drctl deploy`: every stack of the plan, in order, through change sets; resumable.

Per stack: resolve parameters (outputs of earlier stacks, whatever their region), then
create or update through a change set; a change set without changes is deleted and the stack
reported unchanged, so a re-run with nothing changed executes nothing. A stack left in
ROLLBACK_COMPLETE (a failed create) is deleted and created again; UPDATE_ROLLBACK_COMPLETE is
simply updated. `kind: sam` entries run `sam deploy` through the injected runner.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from ops.drctl import artifacts, aurora, control, names, sam, schema
from ops.drctl.cfn import (
    AURORA_WAIT,
    RECREATE_STATES,
    STACK_WAIT,
    UPDATABLE_STATES,
    CloudFormation,
    StackState,
)
from ops.drctl.context import Context
from ops.drctl.errors import EXIT_OK, DrctlError, Refused, StackOperationFailed, UsageError
from ops.drctl.params import ParamOverride, assemble, missing_advice, unknown_overrides
from ops.drctl.plan import OutputRef, Plan, StackSpec, resolve_parameters
from ops.drctl.template import Template, load_template
from ops.drctl.waiting import WaitPolicy

ENGINE_VERSION = "EngineVersion"
_AURORA_TYPES = {"AWS::RDS::GlobalCluster", "AWS::RDS::DBCluster"}


@dataclass(frozen=True)
class DeployOptions:
    dry_run: bool = False
    only: frozenset[str] = frozenset()
    overrides: tuple[ParamOverride, ...] = ()


@dataclass
class Outcome:
    spec: StackSpec
    action: str
    parameters: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def stack_tags(env: str) -> dict[str, str]:
    return {"project": "dr-payment", "environment": env, "managed-by": "drctl"}


def wait_policy(spec: StackSpec) -> WaitPolicy:
    return AURORA_WAIT if "aurora" in spec.id or "aurora" in spec.template_stem else STACK_WAIT


def _blocked(state: StackState) -> str:
    if state.status.endswith("_IN_PROGRESS"):
        return f"{state.name} is busy ({state.status}): wait for it to settle, then re-run"
    if state.status == "UPDATE_ROLLBACK_FAILED":
        return (
            f"{state.name} is UPDATE_ROLLBACK_FAILED: fix the cause, run `aws cloudformation "
            "continue-update-rollback`, then re-run"
        )
    return f"{state.name} is {state.status} ({state.status_reason}): fix it by hand, then re-run"


class Deployer:
    def __init__(self, ctx: Context, plan: Plan, options: DeployOptions) -> None:
        self.ctx = ctx
        self.plan = plan
        self.options = options
        self.outputs: dict[str, dict[str, str]] = {}
        self.outcomes: list[Outcome] = []
        self.closing: list[str] = []  # printed after the per-stack report
        self.migrated = False
        self._schema_target: tuple[schema.Target | None, str] | None = None

    def _selected(self, spec: StackSpec) -> bool:
        return not self.options.only or spec.id in self.options.only

    def run(self) -> None:
        published = False
        for spec in self.plan.stacks:
            if spec.is_sam and self._selected(spec) and not published and not self.options.dry_run:
                # the SAM stacks resolve it at deploy time: no global writer, no SAM deploy
                self._publish_writer_endpoint(required=True)
                self._ensure_active_region()  # the functions start gated on it
                published = True
            self._stack(spec)
        if not published and not self.options.dry_run:
            self._publish_writer_endpoint(required=False)
            self._ensure_active_region()
        if published and not self.migrated:
            self._note_unmigrated()

    def _stack(self, spec: StackSpec) -> None:
        cfn = self.ctx.cfn(spec.region)
        state = cfn.describe(spec.name)
        if not self._selected(spec):
            if state is not None:
                self.outputs[spec.id] = state.outputs
            return
        if spec.failover_only and state is None:
            # The secondary's secret rotation: only where the secrets' primary copy is.
            self.outcomes.append(Outcome(spec, "not deployed (drctl failover makes it)"))
            return
        if not self.options.dry_run:
            self.ctx.console.step(f"{spec.order}. {spec.name} ({spec.region})")
        if spec.is_sam:
            outcome = self._sam(spec, cfn, state)
        elif self.options.dry_run:
            outcome = self._preview(spec, cfn, state)
        else:
            outcome = self._apply(spec, cfn, state)
        self.outcomes.append(outcome)
        if spec.is_sam:
            self._schema(spec, outcome, existed=state is not None)

    def _note_unmigrated(self) -> None:
        _target, why = self._active_schema_target()
        self.closing.append(
            f"ledger schema NOT migrated: {why}"
            if why
            else "ledger schema NOT migrated: the active region's regional stack was not "
            f"part of this run; run `drctl migrate --env {self.plan.env}`"
        )
        self.ctx.console.progress(f"    {self.closing[-1]}")

    # -- the ledger schema, through the active region's SchemaMigrationFunction ---------------

    def _active_schema_target(self) -> tuple[schema.Target | None, str]:
        """Read once per run, after the control item is ensured: (target, "") or (None, why)."""
        if self._schema_target is None:
            try:
                self._schema_target = (schema.active_target(self.ctx), "")
            except DrctlError as exc:
                self._schema_target = (None, str(exc))
        return self._schema_target

    def _schema(self, spec: StackSpec, outcome: Outcome, *, existed: bool) -> None:
        """Right after the active region's regional stack: the function just deployed carries
        the migrations just built. A failure stops the deploy (re-run it, or `drctl migrate`).
        A dry run asks the deployed function what is pending (read only); none deployed yet:
        every migration is."""
        if self.options.dry_run:
            if existed:
                self._preview_schema(spec, outcome)
            return
        target, _why = self._active_schema_target()
        if target is None or target.region != spec.region:
            return
        function = target.function(self.plan.env)
        self.ctx.console.progress(f"    ledger schema: invoking {function} ({target.region})")
        for line in schema.migrate(self.ctx, target):
            self.ctx.console.progress(f"    {line}")
            outcome.notes.append(line)
        self.migrated = True

    def _preview_schema(self, spec: StackSpec, outcome: Outcome) -> None:
        target, _why = self._active_schema_target()
        if target is None:  # a fresh environment: deploy makes the primary active
            target = schema.Target("primary", self.plan.regions["primary"])
        if target.region != spec.region:
            return
        try:
            lines = schema.migrate(self.ctx, target, dry_run=True)
        except DrctlError as exc:
            outcome.notes.append(f"ledger schema not read ({exc})")
            return
        outcome.notes.extend(lines)
        outcome.notes.append("(pending migrations are applied right after this stack)")

    def _ensure_active_region(self) -> None:
        """A fresh environment has no region-control item, and a region gate fails closed: both
        regions would park every payment. Written only where absent (never overwrites)."""
        for note in control.ensure_active(self.ctx, self.plan.regions, actor="drctl deploy"):
            self.ctx.console.progress(f"    {note}")

    def _publish_writer_endpoint(self, *, required: bool) -> None:
        """Point /dr-payment/{env}/aurora/writer-endpoint (both regions) at the global writer
        endpoint. CloudFormation cannot output it (aurora-primary.yaml publishes the regional
        cluster endpoint); it follows the writer across switchover and failover.

        `required` (the run deploys a regional SAM stack): no writer endpoint stops the deploy.
        Otherwise (only infra-global stacks) its absence is reported and the run goes on."""
        identifier = names.global_cluster(self.plan.env)
        primary = self.plan.regions["primary"]
        described = aurora.describe_global(self.ctx.aws.client("rds", primary), identifier)
        endpoint = (described or {}).get("Endpoint")
        if not endpoint:
            # Deploying on would leave the functions on a regional cluster endpoint, which
            # turns read-only (or disappears) after a switchover or failover.
            state = "does not exist" if described is None else "reports no writer endpoint"
            if not required:
                self.ctx.console.progress(
                    f"    note: Aurora global cluster {identifier} {state}: "
                    f"{names.writer_endpoint_parameter(self.plan.env)} not updated (the regional "
                    "SAM stacks need it; their deploy stops until it exists)"
                )
                return
            raise DrctlError(
                f"Aurora global cluster {identifier} ({primary}) {state}, so the functions "
                f"cannot be pointed at the global writer endpoint "
                f"({names.writer_endpoint_parameter(self.plan.env)}); the regional SAM stacks "
                "were not deployed. Check `aws rds describe-global-clusters --region "
                f"{primary} --global-cluster-identifier {identifier}` (Status available, a "
                "writer member, an Endpoint): deploy the aurora stacks first (drctl deploy "
                "--only aurora-primary aurora-secondary) or wait until it is available, then "
                "re-run."
            )
        stale = control.writer_outside_active(self.ctx, self.plan.region_list(), described or {})
        if stale:
            self.ctx.console.progress(f"    writer endpoint left alone: {stale}")
            return
        name = names.writer_endpoint_parameter(self.plan.env)
        for region in self.plan.region_list():
            ssm = self.ctx.aws.client("ssm", region)
            try:
                current = ssm.get_parameter(Name=name)["Parameter"]["Value"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                    continue  # the params stack is not there yet
                raise
            if current != endpoint:
                ssm.put_parameter(Name=name, Value=endpoint, Type="String", Overwrite=True)
                self.ctx.console.progress(f"    {region}: {name} = {endpoint} (global writer)")

    # -- CloudFormation stacks -------------------------------------------------------------

    def _apply(self, spec: StackSpec, cfn: CloudFormation, state: StackState | None) -> Outcome:
        resolved, pending = resolve_parameters(spec, self.outputs)
        if pending:
            ref = pending[0]
            raise DrctlError(
                f"{spec.name}: parameter source {ref.placeholder()} is not available: "
                f"deploy {ref.stack_id} first (is it in --only? does its template output "
                f"{ref.output}?)"
            )
        template = load_template(self.plan.template_path(spec))
        recreated = False
        if state is not None and state.status in RECREATE_STATES:
            self.ctx.console.progress(f"    {state.status}: deleting it to create it again")
            cfn.delete_stack(spec.name, wait_policy(spec))
            state, recreated = None, True
        if state is not None and state.status not in UPDATABLE_STATES:
            raise StackOperationFailed(_blocked(state))
        params = assemble(spec, template, resolved, self.options.overrides, state)
        if params.missing:
            raise DrctlError(missing_advice(spec, params.missing))
        self._guard_engine_upgrade(spec, template, params.values, state)
        source = artifacts.template_source(self.ctx, self.plan, spec, template, may_create=True)
        assert source is not None  # may_create=True always yields a source
        change_set = cfn.create_change_set(
            spec.name,
            change_type="CREATE" if state is None else "UPDATE",
            template=source,
            parameters=params.as_api(),
            tags=stack_tags(self.plan.env),
        )
        if change_set is None:
            assert state is not None  # a CREATE change set always has changes
            self.ctx.console.progress("    unchanged")
            self.outputs[spec.id] = state.outputs
            return Outcome(spec, "unchanged", params.values)
        for change in change_set.changes:
            self.ctx.console.progress(f"    change: {change}")
        cfn.execute(change_set, wait_policy(spec))
        final = cfn.describe(spec.name)
        self.outputs[spec.id] = final.outputs if final else {}
        action = "recreated" if recreated else "created" if state is None else "updated"
        return Outcome(spec, action, params.values)

    def _guard_engine_upgrade(
        self,
        spec: StackSpec,
        template: Template,
        values: dict[str, str],
        state: StackState | None,
    ) -> None:
        """Refuse to let CloudFormation change an Aurora stack's EngineVersion while a member of
        the global cluster runs another one. The plan feeds the secondary's version from the
        primary's output, so a deploy would upgrade the primary first; AWS wants the
        secondaries first, and the members must match for a managed switchover or failover.
        The upgrade is done explicitly (docs/deploy.md "Upgrading Aurora"); this deploy then
        only records the version the clusters already run."""
        target = values.get(ENGINE_VERSION)
        if state is None or target is None or target == state.parameters.get(ENGINE_VERSION):
            return
        kinds = {
            str((r or {}).get("Type")) for r in (template.document.get("Resources") or {}).values()
        }
        if not kinds & _AURORA_TYPES:
            return
        identifier = names.global_cluster(self.plan.env)
        members = aurora.member_versions(self.ctx, self.plan.regions["primary"], identifier)
        behind = [m for m in members if m.version != target]
        if not behind:
            return
        listed = ", ".join(
            f"{m.cluster.identifier} ({m.cluster.region}, "
            f"{'writer' if m.is_writer else 'secondary'}) runs {m.version}"
            for m in behind
        )
        raise Refused(
            f"{spec.name}: {ENGINE_VERSION} would change from "
            f"{state.parameters.get(ENGINE_VERSION)} to {target}, but {listed}. Upgrade "
            "explicitly, secondary cluster first, then the primary (docs/deploy.md, "
            f'"Upgrading Aurora"); then re-run this deploy to record {target}.'
        )

    def _preview(self, spec: StackSpec, cfn: CloudFormation, state: StackState | None) -> Outcome:
        resolved, pending = resolve_parameters(spec, self.outputs)
        shown = {
            key: resolved[key] if isinstance(value, str) or key in resolved else value.placeholder()
            for key, value in spec.parameters.items()
        }
        if state is not None:
            self.outputs[spec.id] = state.outputs
        template = load_template(self.plan.template_path(spec))
        # pending references will have values: only what nothing supplies counts as missing
        params = assemble(spec, template, {**shown, **resolved}, self.options.overrides, state)
        outcome = Outcome(spec, "", shown)
        if params.missing:
            outcome.notes.append(missing_advice(spec, params.missing))
        if params.reuse:
            outcome.notes.append(f"keeps deployed value of {', '.join(params.reuse)}")
        if state is None:
            outcome.action = "new"
        elif state.status in RECREATE_STATES:
            outcome.action = f"recreate (now {state.status})"
        elif state.status not in UPDATABLE_STATES:
            outcome.action = f"blocked ({state.status})"
            outcome.notes.append(_blocked(state))
        elif pending:
            outcome.action = "to update (inputs pending)"
        else:
            outcome.action = self._compare(spec, cfn, template, params.as_api(), outcome)
        return outcome

    def _compare(
        self,
        spec: StackSpec,
        cfn: CloudFormation,
        template: Template,
        api_params: list[dict[str, Any]],
        outcome: Outcome,
    ) -> str:
        """Create, describe and delete an UPDATE change set: it changes nothing deployed."""
        source = artifacts.template_source(self.ctx, self.plan, spec, template, may_create=False)
        if source is None:
            outcome.notes.append("template needs the artifacts bucket: not compared in a dry run")
            return "to update?"
        change_set = cfn.create_change_set(
            spec.name,
            change_type="UPDATE",
            template=source,
            parameters=api_params,
            tags=stack_tags(self.plan.env),
        )
        if change_set is None:
            return "unchanged"
        cfn.delete_change_set(change_set)
        outcome.notes.extend(f"change: {change}" for change in change_set.changes)
        return "to update"

    # -- SAM stacks --------------------------------------------------------------------------

    def _sam(self, spec: StackSpec, cfn: CloudFormation, state: StackState | None) -> Outcome:
        resolved, pending = resolve_parameters(spec, self.outputs)
        if pending and not self.options.dry_run:
            ref = pending[0]
            raise DrctlError(
                f"{spec.name}: parameter source {ref.placeholder()} is not available: "
                f"deploy {ref.stack_id} first"
            )
        given = {  # a dry run shows pending references as <from id.Output>
            key: resolved.get(key, value.placeholder() if isinstance(value, OutputRef) else value)
            for key, value in spec.parameters.items()
        }
        values = sam.sam_parameters(
            spec,
            root=self.plan.root,
            env=self.plan.env,
            given=given,
            overrides=self.options.overrides,
        )
        notes: list[str] = []
        if sam.REVISION in sam.sam_template(self.plan.root).parameters:
            values[sam.REVISION] = self._revision(spec, values, notes)
        argv = sam.deploy_command(
            spec, root=self.plan.root, parameters=values, profile=self.ctx.aws.profile
        )
        if self.options.dry_run:
            if state is not None:
                self.outputs[spec.id] = state.outputs
            action = "new (sam)" if state is None else f"sam decides (now {state.status})"
            return Outcome(spec, action, values, [*notes, shlex.join(argv)])
        self.ctx.console.progress(f"    $ {shlex.join(argv)}")
        code = self.ctx.runner(argv, self.plan.root)
        if code != 0:
            raise StackOperationFailed(f"sam deploy of {spec.name} exited {code}")
        final = cfn.describe(spec.name)
        self.outputs[spec.id] = final.outputs if final else {}
        return Outcome(spec, "deployed (sam)", values)

    def _revision(self, spec: StackSpec, values: dict[str, str], notes: list[str]) -> str:
        """sam.deploy_revision over the build, the values and what the SSM-typed parameters
        resolve to in this stack's region, read now (CloudFormation resolves them at deploy)."""
        build = sam.built_template(self.plan.root).parent
        if not build.is_dir():
            notes.append(f"{sam.REVISION} needs a build: run `make build`")
            return "<computed at deploy>"
        declared = sam.sam_template(self.plan.root).parameters
        ssm = self.ctx.aws.client("ssm", spec.region)
        resolved: dict[str, str] = {}
        for name, path in sam.ssm_paths(declared, values).items():
            try:
                resolved[path] = ssm.get_parameter(Name=path)["Parameter"]["Value"]
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
                    raise
                missing = (
                    f"SSM parameter {path} ({spec.region}, for {name}) does not exist: deploy "
                    "the params stacks first (or create it: docs/deploy.md, prerequisites)"
                )
                if not self.options.dry_run:
                    raise DrctlError(f"{spec.name}: {missing}") from exc
                notes.append(f"{sam.REVISION} computed at deploy: {missing}")
                return "<computed at deploy>"
        revision = sam.deploy_revision(sam.code_digest(build), values, resolved)
        self.ctx.console.progress(
            f"    {sam.REVISION}={revision} (build + {len(values)} parameters + "
            f"{len(resolved)} SSM values)"
        )
        return revision


def deploy_stack(ctx: Context, plan: Plan, spec: StackSpec) -> Outcome:
    """One CloudFormation stack of the plan, as `drctl deploy` makes it (change set, waits,
    parameters, resume), its references read from the stacks they name and nothing else: a
    procedure that deploys in the surviving region calls nothing in the failed one."""
    deployer = Deployer(ctx, plan, DeployOptions(only=frozenset({spec.id})))
    for value in spec.parameters.values():
        if isinstance(value, OutputRef) and value.stack_id not in deployer.outputs:
            source = plan.get(value.stack_id)
            state = ctx.cfn(source.region).describe(source.name)
            if state is not None:
                deployer.outputs[source.id] = state.outputs
    cfn = ctx.cfn(spec.region)
    return deployer._apply(spec, cfn, cfn.describe(spec.name))


def _report(
    ctx: Context, plan: Plan, outcomes: list[Outcome], *, dry_run: bool, closing: list[str]
) -> None:
    mode = "dry run, nothing changed" if dry_run else "done"
    ctx.console.result(
        f"deploy --env {plan.env} ({mode}): account {plan.account}, plan {plan.path.name}"
    )
    for outcome in outcomes:
        spec = outcome.spec
        ctx.console.result(
            f"{spec.order:>3}. {spec.id:<20} {spec.name:<40} {spec.region:<10} {outcome.action}"
        )
        if dry_run:
            for key, value in outcome.parameters.items():
                ctx.console.result(f"       {key} = {value}")
        for note in outcome.notes:
            ctx.console.result(f"       {note}")
    for note in closing:
        ctx.console.result(note)


def run(ctx: Context, options: DeployOptions) -> int:
    plan = ctx.plan()
    unknown = sorted(options.only - set(plan.ids()))
    if unknown:
        raise UsageError(f"--only: unknown stack id(s) {', '.join(unknown)}; plan has {plan.ids()}")
    declared = {s.id: set(load_template(plan.source_path(s)).parameters) for s in plan.stacks}
    unknown = unknown_overrides(options.overrides, declared)
    if unknown:
        raise UsageError("; ".join(unknown))
    wants_sam = any(s.is_sam for s in plan.stacks if not options.only or s.id in options.only)
    if wants_sam and not options.dry_run:
        problem = sam.build_problem(plan.root)
        if problem:
            raise DrctlError(f"cannot deploy the regional SAM stacks: {problem}")
    deployer = Deployer(ctx, plan, options)
    try:
        deployer.run()
    except DrctlError:
        if deployer.outcomes:
            _report(ctx, plan, deployer.outcomes, dry_run=options.dry_run, closing=deployer.closing)
        ctx.console.progress("deploy stopped; fix the cause and re-run: finished stacks are kept")
        raise
    _report(ctx, plan, deployer.outcomes, dry_run=options.dry_run, closing=deployer.closing)
    return EXIT_OK
