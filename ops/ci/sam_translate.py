"""The SAM transform, offline (samtranslator, from the tools virtualenv): what CloudFormation will
really get from template.yaml. Used by ops/ci/validate.sh and by tests that need the translated
template (they run it with .venv-tools/bin/python: samtranslator pins another pydantic than .venv).

    python ops/ci/sam_translate.py check TEMPLATE
        both roles x SnapStart on/off translate; the payment rule targets the `live` alias and
        has a DLQ + retry policy (seed #10); schedules are exempt. Exit 1 with one line per
        problem.
    python ops/ci/sam_translate.py versions TEMPLATE '[{"RegionRole": "primary", ...}, ...]'
        prints, as the first line of output, a JSON list with one entry per parameter set:
        {function logical id: Version logical id} (the version SAM publishes and `live` moves to).
"""

from __future__ import annotations

import copy
import json
import os
import sys
from typing import Any

from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.parser.parser import Parser
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse

os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")


def load(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        source: dict[str, Any] = yaml_parse(fh.read())
    # Local CodeUri paths are only resolvable after `sam package`; any s3:// URI will do here.
    source.get("Globals", {}).get("Function", {}).pop("CodeUri", None)
    for res in source["Resources"].values():
        if res["Type"] == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = "s3://offline-check/code.zip"
    return source


def translate(source: dict[str, Any], parameters: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = Translator(None, Parser()).translate(
        copy.deepcopy(source),
        parameter_values=parameters,
        get_managed_policy_map=lambda: get_bundled_managed_policy_map("aws"),
    )
    return result


def check(path: str) -> list[str]:
    source = load(path)
    problems = []
    for role in ("primary", "secondary"):
        for snap in ("false", "true"):
            label = f"RegionRole={role} EnableSnapStart={snap}"
            try:
                out = translate(source, {"RegionRole": role, "EnableSnapStart": snap})
            except InvalidDocumentException as exc:
                problems += [f"{label}: {cause.message}" for cause in exc.causes]
                continue
            problems += [f"{label}: {p}" for p in _rule_problems(out["Resources"])]
    return problems


def _rule_problems(resources: dict[str, Any]) -> list[str]:
    """Rules that carry events (an EventPattern: payments) must hand them to the `live` alias
    with a DLQ and a retry policy. A schedule (the replication monitor's) carries nothing to
    lose: a missed run is replaced by the next one."""
    problems = []
    for rid, res in resources.items():
        if res["Type"] != "AWS::Events::Rule" or "ScheduleExpression" in res["Properties"]:
            continue
        for target in res["Properties"].get("Targets", []):
            arn = target.get("Arn")
            ref = arn.get("Ref", "") if isinstance(arn, dict) else ""
            if resources.get(ref, {}).get("Type") != "AWS::Lambda::Alias":
                problems.append(f"{rid} target {target.get('Id')} does not invoke a function alias")
            if "Arn" not in target.get("DeadLetterConfig", {}) or "RetryPolicy" not in target:
                problems.append(
                    f"{rid} target {target.get('Id')} lacks DeadLetterConfig.Arn/RetryPolicy"
                )
    return problems


def versions(path: str, parameters: dict[str, str]) -> dict[str, str]:
    """The published Version each aliased function gets for these parameter values."""
    resources = translate(load(path), parameters)["Resources"]
    return {
        res["Properties"]["FunctionName"]["Ref"]: rid
        for rid, res in resources.items()
        if res["Type"] == "AWS::Lambda::Version"
    }


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "check":
        problems = check(argv[1])
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    if len(argv) == 3 and argv[0] == "versions":
        # one line: samtranslator may print its own notes after it
        print(json.dumps([versions(argv[1], params) for params in json.loads(argv[2])]))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
