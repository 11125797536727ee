"""The deploy plan: infra-global/stacks.yaml, with names substituted and references checked.

Format (see notes/contract.md): `regions: {primary, secondary}` and an ordered `stacks:` list of
`{id, name, template | kind: sam, region: primary|secondary, parameters}`. A parameter value is a
string (placeholders {env} {primary_region} {secondary_region} {account} {region} {role}
substituted), a scalar or list (lists become CloudFormation comma-delimited strings), or
`{from: <earlier stack id>, output: <OutputKey>}`. `deploy: failover` marks a stack `drctl deploy`
never creates (it updates it while it exists): `drctl failover` makes it in the surviving region
and `drctl failback` deletes it (the secondary's secret rotation).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ops.drctl.errors import PlanError

ROLES = ("primary", "secondary")
KINDS = ("cloudformation", "sam")
DEPLOYED_BY = ("deploy", "failover")  # the `deploy:` key: who creates the stack
_PLACEHOLDER = re.compile(r"\{([A-Za-z_]+)\}")


@dataclass(frozen=True)
class OutputRef:
    stack_id: str
    output: str

    def placeholder(self) -> str:
        return f"<from {self.stack_id}.{self.output}>"


ParamValue = str | OutputRef


@dataclass(frozen=True)
class StackSpec:
    id: str
    name: str
    role: str
    region: str
    kind: str
    template: str | None
    order: int
    parameters: dict[str, ParamValue] = field(default_factory=dict)
    deployed_by: str = "deploy"

    @property
    def failover_only(self) -> bool:
        """Made by `drctl failover` in the surviving region, never by `drctl deploy`."""
        return self.deployed_by == "failover"

    @property
    def is_sam(self) -> bool:
        return self.kind == "sam"

    @property
    def template_stem(self) -> str:
        return Path(self.template).stem if self.template else ""


@dataclass(frozen=True)
class Plan:
    path: Path
    env: str
    account: str
    regions: dict[str, str]
    stacks: tuple[StackSpec, ...]

    @property
    def infra_dir(self) -> Path:
        return self.path.parent

    @property
    def root(self) -> Path:
        """The project root (holds template.yaml, src/, .aws-sam/)."""
        return self.path.parent.parent

    def template_path(self, spec: StackSpec) -> Path:
        if spec.template is None:
            raise PlanError(f"stack {spec.id} has no template (kind {spec.kind})")
        return self.infra_dir / spec.template

    def source_path(self, spec: StackSpec) -> Path:
        """The template a stack is made from: its infra-global file, or template.yaml (SAM)."""
        return self.root / "template.yaml" if spec.is_sam else self.template_path(spec)

    def get(self, stack_id: str) -> StackSpec:
        for spec in self.stacks:
            if spec.id == stack_id:
                return spec
        raise PlanError(f"no stack with id {stack_id!r} in {self.path}")

    def ids(self) -> list[str]:
        return [spec.id for spec in self.stacks]

    def region_list(self) -> list[str]:
        return [self.regions[role] for role in ROLES]


def substitute(text: str, variables: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in variables:
            raise PlanError(f"unknown placeholder {{{key}}} in {text!r}")
        return variables[key]

    return _PLACEHOLDER.sub(replace, text)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Loader:
    """Collects every problem in the file, so the operator fixes them in one go."""

    def __init__(self, path: Path, env: str, account: str) -> None:
        self.path = path
        self.env = env
        self.account = account
        self.problems: list[str] = []

    def load(self) -> Plan:
        try:
            document = yaml.safe_load(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise PlanError(f"plan {self.path} does not exist") from exc
        except yaml.YAMLError as exc:
            raise PlanError(f"plan {self.path} is not valid YAML: {exc}") from exc
        if not isinstance(document, dict):
            raise PlanError(f"plan {self.path} is not a mapping")
        regions = self._regions(document.get("regions"))
        entries = document.get("stacks")
        if not isinstance(entries, list) or not entries:
            raise PlanError(f"plan {self.path}: `stacks` must be a non-empty list")
        stacks: list[StackSpec] = []
        for order, entry in enumerate(entries, start=1):
            spec = self._stack(order, entry, regions, stacks)
            if spec is not None:
                stacks.append(spec)
        if self.problems:
            listed = "\n  - ".join(self.problems)
            raise PlanError(f"plan {self.path} has problems:\n  - {listed}")
        return Plan(self.path, self.env, self.account, regions, tuple(stacks))

    def _regions(self, raw: Any) -> dict[str, str]:
        if not isinstance(raw, dict) or set(raw) != set(ROLES):
            raise PlanError(f"plan {self.path}: `regions` must map exactly primary and secondary")
        return {role: str(raw[role]) for role in ROLES}

    def _variables(self, regions: dict[str, str], role: str) -> dict[str, str]:
        return {
            "env": self.env,
            "account": self.account,
            "primary_region": regions["primary"],
            "secondary_region": regions["secondary"],
            "region": regions[role],
            "role": role,
        }

    def _stack(
        self, order: int, entry: Any, regions: dict[str, str], earlier: list[StackSpec]
    ) -> StackSpec | None:
        if not isinstance(entry, dict):
            self.problems.append(f"stack #{order} is not a mapping")
            return None
        stack_id = str(entry.get("id") or "")
        where = f"stack #{order} ({stack_id or 'no id'})"
        role = entry.get("region")
        kind = str(entry.get("kind", "cloudformation"))
        template = entry.get("template")
        deployed_by = str(entry.get("deploy", "deploy"))
        checks = [
            (bool(stack_id), f"{where}: missing `id`"),
            (stack_id not in {s.id for s in earlier}, f"{where}: duplicate id"),
            (bool(entry.get("name")), f"{where}: missing `name`"),
            (role in ROLES, f"{where}: `region` must be primary or secondary, not {role!r}"),
            (kind in KINDS, f"{where}: unknown kind {kind!r}"),
            ((kind == "sam") == (template is None), f"{where}: give `template` xor `kind: sam`"),
            (deployed_by in DEPLOYED_BY, f"{where}: `deploy` is deploy or failover"),
            (
                deployed_by == "deploy" or kind != "sam",
                f"{where}: a regional SAM stack cannot be `deploy: failover`",
            ),
        ]
        failed = [message for ok, message in checks if not ok]
        if failed:
            self.problems.extend(failed)
            return None
        if template is not None and not (self.path.parent / str(template)).is_file():
            self.problems.append(f"{where}: template {template} not found in {self.path.parent}")
        variables = self._variables(regions, str(role))
        try:
            name = substitute(str(entry["name"]), variables)
            parameters = self._parameters(where, entry.get("parameters") or {}, variables, earlier)
        except PlanError as exc:
            self.problems.append(f"{where}: {exc}")
            return None
        return StackSpec(
            id=stack_id,
            name=name,
            role=str(role),
            region=regions[str(role)],
            kind=kind,
            template=None if template is None else str(template),
            order=order,
            parameters=parameters,
            deployed_by=deployed_by,
        )

    def _parameters(
        self, where: str, raw: Any, variables: dict[str, str], earlier: list[StackSpec]
    ) -> dict[str, ParamValue]:
        if not isinstance(raw, dict):
            raise PlanError("`parameters` must be a mapping")
        known = {s.id for s in earlier}
        result: dict[str, ParamValue] = {}
        for key, value in raw.items():
            if isinstance(value, dict):
                if set(value) != {"from", "output"}:
                    raise PlanError(f"parameter {key}: a reference is {{from: ID, output: KEY}}")
                source = str(value["from"])
                if source not in known:
                    self.problems.append(
                        f"{where}: parameter {key} refers to {source!r}, "
                        "which is not an earlier stack in the plan"
                    )
                result[str(key)] = OutputRef(source, str(value["output"]))
            elif isinstance(value, list):
                result[str(key)] = ",".join(substitute(_scalar(v), variables) for v in value)
            elif value is None:
                raise PlanError(f"parameter {key} has no value")
            else:
                result[str(key)] = substitute(_scalar(value), variables)
        return result


def read_regions(path: Path) -> dict[str, str]:
    """The plan's regions without the full load (which needs the account id): {} if unreadable."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        regions = raw.get("regions") if isinstance(raw, dict) else None
    except (OSError, yaml.YAMLError):
        return {}
    if not isinstance(regions, dict):
        return {}
    return {str(k): str(v) for k, v in regions.items() if k in ROLES}


def load_plan(path: Path, *, env: str, account: str) -> Plan:
    return _Loader(path, env, account).load()


def resolve_parameters(
    spec: StackSpec, outputs: Mapping[str, Mapping[str, str]]
) -> tuple[dict[str, str], list[OutputRef]]:
    """Values for every parameter whose source is known, and the references still pending."""
    resolved: dict[str, str] = {}
    pending: list[OutputRef] = []
    for key, value in spec.parameters.items():
        if isinstance(value, OutputRef):
            source = outputs.get(value.stack_id)
            if source is None or value.output not in source:
                pending.append(value)
                continue
            resolved[key] = source[value.output]
        else:
            resolved[key] = value
    return resolved, pending
