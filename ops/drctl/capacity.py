"""What an account and region must offer before a first deploy can succeed: Lambda concurrency
for the reservations the regional stack makes, and the chosen AZs for every interface endpoint
and for Lambda. Read-only; `drctl preflight` reports what these find, each with its fix."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from ops.drctl.template import ParameterDecl

# Lambda keeps this much of the regional quota unreserved; a reservation that would leave less
# fails ("decreases account's UnreservedConcurrentExecution below its minimum value").
MIN_UNRESERVED = 100
LAMBDA_CONCURRENCY_QUOTA = "L-B99A9384"  # Service Quotas: Lambda "Concurrent executions"
_FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
_SUB_VARIABLE = re.compile(r"\$\{([A-Za-z0-9:]+)\}")


@dataclass(frozen=True)
class Reservation:
    logical_id: str
    function_name: str | None  # None when the template leaves the name to CloudFormation
    amount: int
    parameter: str | None  # the template parameter that sets it, if one does


def _value(node: Any, values: Mapping[str, str], declared: Mapping[str, ParameterDecl]) -> Any:
    if isinstance(node, dict) and set(node) == {"Ref"}:
        name = str(node["Ref"])
        return values.get(name, declared[name].default if name in declared else None)
    if isinstance(node, dict) and set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        text = node["Fn::Sub"]
        found = _SUB_VARIABLE.findall(text)
        resolved = {n: _value({"Ref": n}, values, declared) for n in found}
        if any(v is None for v in resolved.values()):
            return None
        return _SUB_VARIABLE.sub(lambda m: str(resolved[m.group(1)]), text)
    return node


def reservations(
    document: Mapping[str, Any], values: Mapping[str, str], declared: Mapping[str, ParameterDecl]
) -> list[Reservation]:
    """Reserved concurrency each function of a template asks for, with these parameter values
    (a function added later, e.g. a monitor reserving 1, is counted without a code change)."""
    globals_fn = ((document.get("Globals") or {}).get("Function")) or {}
    found = []
    for logical_id, res in (document.get("Resources") or {}).items():
        if not isinstance(res, dict) or res.get("Type") not in _FUNCTION_TYPES:
            continue
        props = res.get("Properties") or {}
        raw = props.get("ReservedConcurrentExecutions")
        if raw is None and res["Type"] == "AWS::Serverless::Function":
            raw = globals_fn.get("ReservedConcurrentExecutions")
        amount = _value(raw, values, declared)
        if amount is None or not str(amount).isdigit():
            continue
        name = _value(props.get("FunctionName"), values, declared)
        parameter = str(raw["Ref"]) if isinstance(raw, dict) and "Ref" in raw else None
        found.append(
            Reservation(
                str(logical_id), name if isinstance(name, str) else None, int(amount), parameter
            )
        )
    return found


def current_reservation(lambda_client: Any, function_name: str | None) -> int:
    """What the function reserves today (0 if it does not exist yet): already taken from the
    account's unreserved pool, so a redeploy does not need it twice."""
    if not function_name:
        return 0
    try:
        answer = lambda_client.get_function_concurrency(FunctionName=function_name)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return 0
        raise
    return int(answer.get("ReservedConcurrentExecutions") or 0)


@dataclass(frozen=True)
class ConcurrencyVerdict:
    limit: int  # AccountLimit.ConcurrentExecutions
    unreserved: int  # AccountLimit.UnreservedConcurrentExecutions, now
    wanted: int  # what the stacks will reserve
    held: int  # what our functions already reserve (counted in `unreserved`)

    @property
    def unreserved_after(self) -> int:
        return self.unreserved + self.held - self.wanted

    @property
    def fits(self) -> bool:
        return self.unreserved_after >= MIN_UNRESERVED

    @property
    def quota_needed(self) -> int:
        """The smallest quota that fits: other functions' reservations + ours + Lambda's 100."""
        reserved_by_others = self.limit - self.unreserved - self.held
        return reserved_by_others + self.wanted + MIN_UNRESERVED


def concurrency_verdict(lambda_client: Any, wanted: list[Reservation]) -> ConcurrencyVerdict:
    limits = lambda_client.get_account_settings()["AccountLimit"]
    return ConcurrencyVerdict(
        limit=int(limits["ConcurrentExecutions"]),
        unreserved=int(limits["UnreservedConcurrentExecutions"]),
        wanted=sum(r.amount for r in wanted),
        held=sum(current_reservation(lambda_client, r.function_name) for r in wanted),
    )


# ------------------------------------------------------------------ Availability Zones


def interface_services(document: Mapping[str, Any], region: str) -> list[str]:
    """Full service names (com.amazonaws.<region>.<svc>) of a template's interface endpoints."""
    found = []
    for res in (document.get("Resources") or {}).values():
        props = (res or {}).get("Properties") or {}
        if (
            res.get("Type") != "AWS::EC2::VPCEndpoint"
            or props.get("VpcEndpointType") != "Interface"
        ):
            continue
        name = props.get("ServiceName")
        text = name.get("Fn::Sub") if isinstance(name, dict) else name
        if isinstance(text, str):
            found.append(text.replace("${AWS::Region}", region))
    return sorted(found)


def lambda_service(region: str) -> str:
    return f"com.amazonaws.{region}.lambda"


@dataclass(frozen=True)
class ZoneReport:
    unknown: list[str]  # AZ IDs that are no zone of this region (or not available)
    offered: list[str]  # the region's available zone IDs, for the fix
    missing: dict[str, list[str]]  # service name -> the chosen AZ IDs it is not offered in
    names: dict[str, str]  # AZ ID -> this account's zone name

    def label(self, zone_ids: list[str]) -> str:
        return ", ".join(f"{z} ({self.names[z]} in this account)" for z in zone_ids)


def zone_report(ec2: Any, az_ids: list[str], services: list[str]) -> ZoneReport:
    """Maps AZ IDs to this account's zone names (DescribeAvailabilityZones), then checks that each
    endpoint service lists every chosen zone (DescribeVpcEndpointServices answers in names)."""
    zones = ec2.describe_availability_zones(
        Filters=[{"Name": "zone-type", "Values": ["availability-zone"]}]
    )["AvailabilityZones"]
    by_id = {
        z["ZoneId"]: z["ZoneName"] for z in zones if z.get("State", "available") == "available"
    }
    unknown = [zone for zone in az_ids if zone not in by_id]
    chosen = {zone: by_id[zone] for zone in az_ids if zone in by_id}
    missing: dict[str, list[str]] = {}
    for service in services:
        try:
            details = ec2.describe_vpc_endpoint_services(ServiceNames=[service])["ServiceDetails"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "InvalidServiceName":
                raise
            details = []
        offered = {name for d in details for name in d.get("AvailabilityZones", [])}
        lacking = [zone for zone, name in chosen.items() if name not in offered]
        if lacking:
            missing[service] = lacking
    return ZoneReport(unknown, sorted(by_id), missing, by_id)
