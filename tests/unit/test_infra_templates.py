"""What cfn-lint and checkov cannot see in infra-global, checked statically (issue 10): subnets
placed by AZ ID, Aurora that never upgrades itself, no DNS name on a Function URL, and interface
endpoints that match what the code in the VPC calls."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from ops.drctl.context import DEFAULT_PLAN
from ops.drctl.plan import OutputRef, load_plan
from ops.drctl.template import load_template

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra-global"
NETWORK = INFRA / "network.yaml"


def _resources(path: Path) -> dict[str, dict[str, Any]]:
    return dict(load_template(path).document.get("Resources") or {})


def _templates() -> list[Path]:
    return sorted(p for p in INFRA.glob("*.yaml") if p.name != "stacks.yaml")


# ------------------------------------------------------------------ AZs chosen, not positional


def test_subnets_are_placed_by_az_id_from_a_parameter() -> None:
    template = load_template(NETWORK)
    assert "Fn::GetAZs" not in _keys(template.document)
    subnets = {k: r for k, r in _resources(NETWORK).items() if r["Type"] == "AWS::EC2::Subnet"}
    assert len(subnets) == 3
    for index, (name, subnet) in enumerate(sorted(subnets.items())):
        props = subnet["Properties"]
        assert "AvailabilityZone" not in props, name
        assert props["AvailabilityZoneId"] == {
            "Fn::Select": [index, {"Ref": "AvailabilityZoneIds"}]
        }, name
    decl = template.parameters["AvailabilityZoneIds"]
    assert decl.required and decl.is_list  # the plan says which zones, per region
    assert decl.violation("use1-az1,usw2-az3") is None
    assert decl.violation("us-east-1a,use1-az2") is not None  # a zone NAME is refused


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_the_plan_names_enough_distinct_az_ids_of_each_region(env: str) -> None:
    from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend

    zone_ids = {
        region: {zone.zone_id for zone in zones}
        for region, zones in RegionsAndZonesBackend.zones.items()
    }
    plan = load_plan(DEFAULT_PLAN, env=env, account="123456789012")
    networks = [s for s in plan.stacks if s.template == "network.yaml"]
    assert {s.region for s in networks} == set(plan.regions.values())
    for spec in networks:
        ids = str(spec.parameters["AvailabilityZoneIds"]).split(",")
        count = int(str(spec.parameters.get("AzCount", "3")))
        assert len(ids) >= count and len(set(ids)) == len(ids), spec.id
        assert set(ids) <= zone_ids[spec.region], f"{spec.id}: {ids} not all in {spec.region}"
        assert "use1-az3" not in ids  # no Graviton (db.r6g) there; several services absent


# ------------------------------------------------------------------ Aurora upgrades explicitly


def test_no_aurora_instance_upgrades_itself() -> None:
    instances = [
        (path.name, name, res)
        for path in _templates()
        for name, res in _resources(path).items()
        if res["Type"] == "AWS::RDS::DBInstance"
    ]
    assert len(instances) == 3  # writer + reader (primary), one in the secondary
    for path, name, res in instances:
        # explicit false: the property defaults to true when left out
        assert res["Properties"].get("AutoMinorVersionUpgrade") is False, (path, name)


def test_the_upgrade_path_is_documented_secondary_first() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text()
    section = text[text.index("## Upgrading Aurora") :]
    secondary = section.index("--db-cluster-identifier dr-payment-secondary-")
    primary = section.index("--db-cluster-identifier dr-payment-primary-")
    assert secondary < primary


# -------------------------------------------------------------- no custom name on a Function URL


def test_no_dns_record_points_a_custom_name_at_a_function_url() -> None:
    """A Function URL answers only to its own host name (no custom domains): a CNAME to it fails
    TLS and routing. Record values must not come from the regional SAM stacks' outputs."""
    plan = load_plan(DEFAULT_PLAN, env="dev", account="123456789012")
    for spec in plan.stacks:
        if spec.is_sam:
            continue
        from_sam = {
            key
            for key, value in spec.parameters.items()
            if isinstance(value, OutputRef) and plan.get(value.stack_id).is_sam
        }
        for name, res in _resources(plan.template_path(spec)).items():
            if not res["Type"].startswith("AWS::Route53::RecordSet"):
                continue
            used = _refs(res.get("Properties"))
            assert not used & from_sam, f"{spec.template} {name} points at {used & from_sam}"


def _keys(node: Any) -> set[str]:
    if isinstance(node, dict):
        return set(node).union(*(_keys(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_keys(item) for item in node))
    return set()


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["Ref"]} if isinstance(node.get("Ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(item) for item in node))
    return set()


def test_the_health_checks_probe_cloudfront_in_front_of_each_function_url() -> None:
    """Route 53 probes a distribution (its own host: SNI and certificate match) whose origin is
    the region's Function URL host, signed by origin access control, behind the WAF web ACL."""
    resources = _resources(INFRA / "dns.yaml")
    checks = {k: r for k, r in resources.items() if r["Type"] == "AWS::Route53::HealthCheck"}
    assert len(checks) == 2
    for check in checks.values():
        config = check["Properties"]["HealthCheckConfig"]
        assert config["EnableSNI"] is True
        edge_name = config["FullyQualifiedDomainName"]["Fn::GetAtt"][0]
        edge = resources[edge_name]["Properties"]["DistributionConfig"]
        [origin] = edge["Origins"]
        assert origin["DomainName"]["Ref"].endswith("HealthFqdn")
        assert origin["OriginAccessControlId"] == {
            "Fn::GetAtt": ["HealthOriginAccessControl", "Id"]
        }
        assert edge["WebACLId"] == {"Fn::GetAtt": ["HealthWebAcl", "Arn"]}
        assert edge["DefaultCacheBehavior"]["AllowedMethods"] == ["GET", "HEAD"]
    oac = resources["HealthOriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (oac["OriginAccessControlOriginType"], oac["SigningBehavior"]) == ("lambda", "always")
    template = load_template(ROOT / "template.yaml").document
    url = template["Resources"]["HealthFunction"]["Properties"]["FunctionUrlConfig"]
    assert url["AuthType"] == "AWS_IAM"  # only CloudFront's signed requests get through


# ------------------------------------------------------------------ interface endpoints in use

# What runs in the VPC besides src/: the Secrets Manager hosted rotation functions
# (secrets-rotation.yaml) call Secrets Manager only (RDS DescribeDBInstances only for a read
# replica's secret, which this project has not).
HOSTED_ROTATION = {"secretsmanager"}
# Powertools parameter providers build their own boto3 client.
PROVIDERS = {
    "SecretsProvider": "secretsmanager",
    "SSMProvider": "ssm",
    "DynamoDBProvider": "dynamodb",
    "AppConfigProvider": "appconfigdata",
}


def _clients_in_src() -> set[str]:
    """boto3 service names the function code builds clients for (`...client("sqs", ...)`)."""
    found: set[str] = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in PROVIDERS:
                found.add(PROVIDERS[name])
            elif name in ("client", "resource") and node.args:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
    return found


def _endpoint_name(service: str) -> str:
    """The VPC endpoint service suffix of a boto3 service (cloudwatch -> monitoring)."""
    return str(botocore.session.get_session().get_service_model(service).endpoint_prefix)


def _endpoints(kind: str) -> set[str]:
    services = set()
    for res in _resources(NETWORK).values():
        props = res.get("Properties") or {}
        if res["Type"] == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType") == kind:
            services.add(str(props["ServiceName"]["Fn::Sub"]).rsplit(".", 1)[1])
    return services


def test_the_code_scan_finds_the_clients_the_functions_build() -> None:
    assert {"dynamodb", "sqs", "secretsmanager", "s3", "cloudwatch", "rds"} <= _clients_in_src()


def test_interface_endpoints_are_exactly_what_code_in_the_vpc_calls() -> None:
    called = {_endpoint_name(service) for service in _clients_in_src()}
    needed = (called | HOSTED_ROTATION) - _endpoints("Gateway")
    assert _endpoints("Gateway") == {"s3", "dynamodb"}
    kept = _endpoints("Interface")
    assert not needed - kept, f"called from the VPC without an endpoint: {sorted(needed - kept)}"
    assert not kept - needed, (
        f"endpoints nobody calls (~88 USD/month each): {sorted(kept - needed)}"
    )


def test_every_function_in_the_vpc_runs_the_scanned_code() -> None:
    """The scan covers src/ because every function's code root is src/."""
    template = load_template(ROOT / "template.yaml").document
    code_root = template["Globals"]["Function"]["CodeUri"]
    assert code_root == "src/"
    for name, res in template["Resources"].items():
        if res["Type"] == "AWS::Serverless::Function":
            assert res["Properties"].get("CodeUri", code_root) == "src/", name
