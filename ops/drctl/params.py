"""Parameter values for one stack: plan values, operator --param overrides, previous values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ops.drctl.cfn import StackState
from ops.drctl.errors import PlanError, UsageError
from ops.drctl.plan import StackSpec
from ops.drctl.template import Template


@dataclass(frozen=True)
class ParamOverride:
    """`--param KEY=VALUE` (every stack whose template declares KEY) or `--param ID.KEY=VALUE`."""

    stack_id: str | None
    key: str
    value: str

    @classmethod
    def parse(cls, text: str) -> ParamOverride:
        target, sep, value = text.partition("=")
        if not sep or not target:
            raise UsageError(f"--param {text!r}: expected KEY=VALUE or STACK_ID.KEY=VALUE")
        stack_id, dot, key = target.rpartition(".")
        return cls(stack_id if dot else None, key, value)

    def applies_to(self, spec: StackSpec, template: Template) -> bool:
        return self.stack_id in (None, spec.id) and self.key in template.parameters


@dataclass(frozen=True)
class StackParameters:
    values: dict[str, str]
    reuse: tuple[str, ...]  # required, not given, kept from the deployed stack
    missing: tuple[str, ...]  # required, not given, nothing to reuse

    def as_api(self) -> list[dict[str, Any]]:
        given: list[dict[str, Any]] = [
            {"ParameterKey": key, "ParameterValue": value} for key, value in self.values.items()
        ]
        return given + [{"ParameterKey": key, "UsePreviousValue": True} for key in self.reuse]


def assemble(
    spec: StackSpec,
    template: Template,
    resolved: dict[str, str],
    overrides: tuple[ParamOverride, ...],
    existing: StackState | None,
) -> StackParameters:
    values = dict(resolved)
    for override in overrides:
        if override.applies_to(spec, template):
            values[override.key] = override.value
    undeclared = sorted(set(values) - set(template.parameters))
    if undeclared:
        raise PlanError(
            f"{spec.id}: parameter(s) {', '.join(undeclared)} not declared in {spec.template}"
        )
    reuse: list[str] = []
    missing: list[str] = []
    for decl in template.parameters.values():
        if decl.name in values or not decl.required:
            continue
        if existing is not None and decl.name in existing.parameters:
            reuse.append(decl.name)
        else:
            missing.append(decl.name)
    return StackParameters(values, tuple(reuse), tuple(missing))


def missing_parameters(spec: StackSpec, missing: tuple[str, ...]) -> tuple[str, str]:
    """(what is missing, how to supply it)."""
    flags = " ".join(f"--param {spec.id}.{name}=VALUE" for name in missing)
    return (
        f"{spec.name} ({spec.template}) needs {', '.join(missing)}: no Default in the template, "
        "not set by the plan",
        f"pass {flags} to deploy (later deploys reuse the deployed value)",
    )


def missing_advice(spec: StackSpec, missing: tuple[str, ...]) -> str:
    what, fix = missing_parameters(spec, missing)
    return f"{what}: {fix}"


def unknown_overrides(
    overrides: tuple[ParamOverride, ...], declared: dict[str, set[str]]
) -> list[str]:
    """--param values that no stack would take (`declared`: stack id -> declared parameter
    names): a mistyped stack id or key must not be ignored in silence."""
    problems = []
    for override in overrides:
        if override.stack_id is not None:
            if override.stack_id not in declared:
                problems.append(
                    f"--param {override.stack_id}.{override.key}: no stack with that id"
                )
            elif override.key not in declared[override.stack_id]:
                problems.append(
                    f"--param {override.stack_id}.{override.key}: that stack's template declares "
                    f"no parameter {override.key}"
                )
        elif not any(override.key in names for names in declared.values()):
            problems.append(f"--param {override.key}: no template of the plan declares it")
    return problems
