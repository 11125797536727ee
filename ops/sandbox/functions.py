"""The functions as template.yaml declares them: handler, code root, timeout, memory, and their
environment resolved against the sandbox. Any AWS::Serverless::Function added to the template
is invocable in the sandbox without touching this harness."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ops.sandbox.resources import REGIONAL_TEMPLATE, load_template

ACCOUNT_ID = "123456789012"  # moto's default account
_SUB_FIELD = re.compile(r"\$\{([^}!]+)\}")
_SSM_PREFIX = re.compile(r"^/dr-payment/[^/]+/")


class UnknownFunction(LookupError):
    pass


@dataclass(frozen=True)
class FunctionDefinition:
    logical_id: str
    handler: str  # module.attribute
    code_uri: str
    properties: Mapping[str, Any]
    globals: Mapping[str, Any]

    @property
    def module(self) -> str:
        return self.handler.rsplit(".", 1)[0]

    @property
    def attribute(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    def setting(self, name: str, default: Any = None) -> Any:
        return self.properties.get(name, self.globals.get(name, default))

    def declared_environment(self) -> dict[str, Any]:
        """Globals' variables overlaid with the function's, unresolved (as SAM merges them)."""
        merged: dict[str, Any] = {}
        for source in (self.globals, self.properties):
            merged.update(source.get("Environment", {}).get("Variables", {}))
        return merged


def _template() -> dict[str, Any]:
    return load_template(REGIONAL_TEMPLATE)


def function_ids() -> list[str]:
    resources = _template()["Resources"]
    return [
        logical_id
        for logical_id, resource in resources.items()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]


def function(logical_id: str) -> FunctionDefinition:
    template = _template()
    resource = template["Resources"].get(logical_id)
    if not resource or resource.get("Type") != "AWS::Serverless::Function":
        known = ", ".join(function_ids()) or "none"
        raise UnknownFunction(
            f"{logical_id!r} is not an AWS::Serverless::Function in template.yaml "
            f"(functions: {known})"
        )
    globals_ = template.get("Globals", {}).get("Function", {})
    properties = resource.get("Properties", {})
    handler = properties.get("Handler", globals_.get("Handler"))
    code_uri = properties.get("CodeUri", globals_.get("CodeUri", "."))
    if not isinstance(handler, str) or "." not in handler:
        raise UnknownFunction(f"{logical_id}: no module.attribute Handler in template.yaml")
    return FunctionDefinition(logical_id, handler, str(code_uri), properties, globals_)


class Resolver:
    """Resolves the intrinsics function settings use (Ref, !Sub) to sandbox values.

    Parameters: SSM-typed ones by their /dr-payment/<env>/<path> default (the published contract),
    `overrides` by name, the rest by their Default. Resources: a queue's Ref is its URL, a bus's its
    name. Anything else stays unresolved, and SAM would pass "" for it: the variable is omitted.
    """

    def __init__(
        self,
        *,
        region: str,
        parameters: Mapping[str, str],
        ssm: Mapping[str, str],
        queue_urls: Mapping[str, str],
    ) -> None:
        template = _template()
        self._resources: dict[str, Any] = template["Resources"]
        self._values: dict[str, str] = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        for name, spec in template.get("Parameters", {}).items():
            default = spec.get("Default")
            if str(spec.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
                path = _SSM_PREFIX.sub("", str(default or ""))
                if path in ssm:
                    self._values[name] = ssm[path]
            elif default is not None:
                self._values[name] = str(default)
        self._values.update(parameters)
        self._queue_urls = dict(queue_urls)
        self.ssm = dict(ssm)  # what the SSM-typed parameters read (path under /dr-payment/<env>/)
        self._conditions: dict[str, Any] = template.get("Conditions", {})

    def condition(self, name: str) -> bool | None:
        """Evaluates a template condition built from Fn::Equals/Not/And/Or; None if unknown."""
        return self._truth(self._conditions.get(name))

    def _truth(self, spec: Any) -> bool | None:
        if not isinstance(spec, dict) or len(spec) != 1:
            return None
        ((op, args),) = spec.items()
        if op == "Condition":
            return self.condition(str(args))
        if op == "Fn::Equals":
            left, right = (self.resolve(arg) for arg in args)
            return None if left is None or right is None else left == right
        parts = [self._truth(arg) for arg in args]
        if None in parts:
            return None
        if op == "Fn::Not":
            return not parts[0]
        if op == "Fn::And":
            return all(parts)
        if op == "Fn::Or":
            return any(parts)
        return None

    def _ref(self, name: str) -> str | None:
        if name in self._values:
            return self._values[name]
        resource = self._resources.get(name, {})
        kind, props = resource.get("Type"), resource.get("Properties", {})
        if kind == "AWS::SQS::Queue":
            queue_name = self.resolve(props.get("QueueName"))
            return self._queue_urls.get(queue_name) if queue_name else None
        if kind == "AWS::Events::EventBus":
            return self.resolve(props.get("Name"))
        return None

    def resolve(self, value: Any) -> str | None:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        if isinstance(value, dict) and "Ref" in value:
            return self._ref(str(value["Ref"]))
        if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
            missing: list[str] = []

            def field(match: re.Match[str]) -> str:
                found = self._ref(match.group(1))
                if found is None:
                    missing.append(match.group(1))
                return found or ""

            text = _SUB_FIELD.sub(field, value["Fn::Sub"])
            return None if missing else text
        if isinstance(value, dict) and isinstance(value.get("Fn::If"), list):
            name, when_true, when_false = value["Fn::If"]
            chosen = self.condition(str(name))
            return None if chosen is None else self.resolve(when_true if chosen else when_false)
        return None

    def environment(self, fn: FunctionDefinition) -> dict[str, str]:
        resolved = {name: self.resolve(value) for name, value in fn.declared_environment().items()}
        return {name: value for name, value in resolved.items() if value is not None}

    def function_name(self, fn: FunctionDefinition) -> str:
        return self.resolve(fn.properties.get("FunctionName")) or fn.logical_id

    def number(self, fn: FunctionDefinition, name: str, default: int) -> int:
        value = self.resolve(fn.setting(name, default))
        return int(value) if value is not None and value.isdigit() else default
