"""Read CloudFormation/SAM templates: YAML with short-form intrinsic tags (!Ref, !Sub, ...)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from ops.drctl.errors import PlanError


class _TemplateLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Tag value` into {"Fn::Tag": value} (or {"Ref": value})."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


def parse_template(text: str) -> dict[str, Any]:
    loaded = yaml.load(text, Loader=_TemplateLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(loaded, dict):
        raise PlanError("template is not a YAML mapping")
    return loaded


@dataclass(frozen=True)
class ParameterDecl:
    name: str
    type: str
    default: str | None  # None: no Default, the caller must supply a value
    allowed_values: tuple[str, ...] = ()
    allowed_pattern: str | None = None

    @property
    def required(self) -> bool:
        return self.default is None

    @property
    def is_ssm_path(self) -> bool:
        """An SSM-typed parameter: its value is a parameter name CloudFormation resolves."""
        return self.type.startswith("AWS::SSM::Parameter::Value")

    @property
    def is_list(self) -> bool:
        return self.type == "CommaDelimitedList" or self.type.startswith("List<")

    def items(self, value: str) -> list[str]:
        """The value as CloudFormation sees it: one item, or the comma-separated items of a list."""
        return [item.strip() for item in value.split(",")] if self.is_list else [value]

    def violation(self, value: str) -> str | None:
        """Why CloudFormation would reject `value` (AllowedValues / AllowedPattern), if it would.
        On a list type both apply to each item, as CloudFormation applies them."""
        for item in self.items(value):
            if self.allowed_values and item not in self.allowed_values:
                return f"{self.name}={item!r} is not one of {list(self.allowed_values)}"
            if self.allowed_pattern and not re.fullmatch(self.allowed_pattern, item):
                return f"{self.name}={item!r} does not match {self.allowed_pattern}"
        return None


@dataclass(frozen=True)
class Template:
    path: Path
    body: str
    parameters: dict[str, ParameterDecl]
    document: dict[str, Any]

    @property
    def size(self) -> int:
        return len(self.body.encode("utf-8"))


def _declarations(document: dict[str, Any]) -> dict[str, ParameterDecl]:
    declared = document.get("Parameters") or {}
    result = {}
    for name, spec in declared.items():
        spec = spec or {}
        default = spec.get("Default")
        if isinstance(default, list):
            default = ",".join(str(item) for item in default)
        pattern = spec.get("AllowedPattern")
        result[name] = ParameterDecl(
            name=name,
            type=str(spec.get("Type", "String")),
            default=None if default is None else str(default),
            allowed_values=tuple(str(v) for v in spec.get("AllowedValues") or ()),
            allowed_pattern=None if pattern is None else str(pattern),
        )
    return result


@lru_cache(maxsize=64)
def _load_cached(path: Path, mtime_ns: int) -> Template:
    body = path.read_text(encoding="utf-8")
    try:
        document = parse_template(body)
    except yaml.YAMLError as exc:
        raise PlanError(f"{path}: not valid YAML: {exc}") from exc
    return Template(path=path, body=body, parameters=_declarations(document), document=document)


def load_template(path: Path) -> Template:
    if not path.is_file():
        raise PlanError(f"template {path} does not exist")
    return _load_cached(path, path.stat().st_mtime_ns)
