"""Every alarm reaches a person, and watches a metric that exists.

- Every AWS::CloudWatch::Alarm of every template notifies the regional alarm topic on ALARM and
  on OK (state changes only: no InsufficientDataActions), and that topic has a subscription.
- Every metric an alarm or a dashboard widget names is one our code publishes (derived from
  shared/metric_names.py and from the EMF calls in src/, not from a list kept here) with the
  dimensions it publishes, or one an AWS service publishes for a resource the same template makes.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ops.drctl.context import DEFAULT_PLAN
from ops.drctl.plan import OutputRef, load_plan
from ops.drctl.template import load_template
from shared import metric_names
from shared.records import Outcome

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = [
    ROOT / "template.yaml",
    *sorted(p for p in (ROOT / "infra-global").glob("*.yaml") if p.name != "stacks.yaml"),
    ROOT / "ops" / "ci" / "github-oidc-role.yaml",
]
# What AWS publishes, for which kind of resource each dimension must name (in the same template).
AWS_METRICS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible"): {"QueueName": ("AWS::SQS::Queue",)},
    **{
        ("AWS/Lambda", name): {"FunctionName": ("AWS::Serverless::Function",)}
        for name in ("Errors", "Throttles", "Invocations")
    },
    ("AWS/Events", "FailedInvocations"): {
        "EventBusName": ("AWS::Events::EventBus",),
        "RuleName": ("EventBridgeRule",),
    },
    ("AWS/Route53", "HealthCheckStatus"): {"HealthCheckId": ("AWS::Route53::HealthCheck",)},
}


def _doc(path: Path) -> dict[str, Any]:
    return dict(load_template(path).document)


def _alarms() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path in TEMPLATES:
        for name, resource in (_doc(path).get("Resources") or {}).items():
            if resource["Type"] in ("AWS::CloudWatch::Alarm", "AWS::CloudWatch::CompositeAlarm"):
                yield path.name, name, resource["Properties"]


ALARMS = list(_alarms())


def test_there_are_alarms_in_every_template_that_should_have_them() -> None:
    assert {path for path, _, _ in ALARMS} == {"template.yaml", "dns.yaml", "keys.yaml"}
    assert len(ALARMS) > 25


# ------------------------------------------------------------------ every alarm reaches a person


def _topic_refs() -> dict[str, dict[str, Any]]:
    """Per template, the reference its alarms must notify: the keys stack's subscribed topic."""
    plan = load_plan(DEFAULT_PLAN, env="dev", account="123456789012")
    keys = _doc(ROOT / "infra-global" / "keys.yaml")["Resources"]
    [topic] = [name for name, r in keys.items() if r["Type"] == "AWS::SNS::Topic"]
    subscriptions = [r for r in keys.values() if r["Type"] == "AWS::SNS::Subscription"]
    assert [s["Properties"]["TopicArn"] for s in subscriptions] == [{"Ref": topic}]
    assert _doc(ROOT / "infra-global" / "keys.yaml")["Outputs"]["AlarmTopicArn"]["Value"] == {
        "Ref": topic
    }
    refs = {"keys.yaml": {"Ref": topic}}
    # Stacks of the plan that take the topic as a parameter get it from a keys stack's output.
    for spec in plan.stacks:
        value = spec.parameters.get("AlarmTopicArn")
        if isinstance(value, OutputRef):
            assert plan.get(value.stack_id).template == "keys.yaml"
            assert value.output == "AlarmTopicArn"
            refs[spec.template] = {"Ref": "AlarmTopicArn"}
    # The regional stack reads it from SSM, published by params.yaml from the keys stack.
    regional = _doc(ROOT / "template.yaml")["Parameters"]["AlarmTopicArn"]
    assert regional["Default"] == "/dr-payment/dev/sns/alarm-topic-arn"
    params = _doc(ROOT / "infra-global" / "params.yaml")["Resources"]
    assert params["AlarmTopicArnParameter"]["Properties"]["Value"] == {"Ref": "AlarmTopicArn"}
    for spec in plan.stacks:
        if spec.template == "params.yaml":
            source = spec.parameters["AlarmTopicArn"]
            assert isinstance(source, OutputRef) and source.output == "AlarmTopicArn"
            assert plan.get(source.stack_id).template == "keys.yaml"
            assert plan.get(source.stack_id).region == spec.region  # this region's topic
    refs["template.yaml"] = {"Ref": "AlarmTopicArn"}
    return refs


@pytest.mark.parametrize(("path", "name", "alarm"), ALARMS, ids=[f"{p}:{n}" for p, n, _ in ALARMS])
def test_every_alarm_notifies_the_alarm_topic_on_state_changes_only(
    path: str, name: str, alarm: dict[str, Any]
) -> None:
    topic = _topic_refs()[path]
    assert alarm.get("AlarmActions") == [topic], name
    assert alarm.get("OKActions") == [topic], name
    assert "InsufficientDataActions" not in alarm, name  # a state change, not a stream
    assert alarm.get("ActionsEnabled", True) is True, name


# ------------------------------------------------------------------ every metric exists


def _published_by_code() -> dict[tuple[str, str], set[tuple[str, ...]]]:
    """(namespace, name) -> dimension-name sets our functions publish: the monitor's from
    shared/metric_names.py; the others from their add_metric / single_metric calls in src/,
    in the Powertools namespace and `service` dimension the template gives each function."""
    found: dict[tuple[str, str], set[tuple[str, ...]]] = {
        (metric_names.NAMESPACE, spec.name): {spec.dimensions}
        for spec in metric_names.SPECS.values()
    }
    template = _doc(ROOT / "template.yaml")
    namespace = template["Globals"]["Function"]["Environment"]["Variables"][
        "POWERTOOLS_METRICS_NAMESPACE"
    ]
    for package, names in _emf_names().items():
        services = [
            r["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::Serverless::Function"
            and r["Properties"]["Handler"].startswith(f"{package}.")
        ]
        assert services, f"src/{package} publishes metrics but no function runs it"
        for name, extra in names:
            found.setdefault((namespace, name), set()).add(("service", *extra))
            SERVICES.setdefault((namespace, name), set()).update(services)
    return found


# (namespace, name) -> the `service` dimension values it is published with (Powertools).
SERVICES: dict[tuple[str, str], set[str]] = {}


def _emf_names() -> dict[str, set[tuple[str, tuple[str, ...]]]]:
    """Per package of src/, (metric name, extra dimension names) of every EMF call."""
    found: dict[str, set[tuple[str, tuple[str, ...]]]] = {}
    for path in (ROOT / "src").rglob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call) and _called(node) in ("add_metric", "single_metric")
            ):
                continue
            extra = tuple(sorted(_added_dimensions(tree, node)))
            for name in _metric_names(node):
                package = path.relative_to(ROOT / "src").parts[0]
                found.setdefault(package, set()).add((name, extra))
    return found


def _called(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _metric_names(node: ast.Call) -> list[str]:
    [value] = [k.value for k in node.keywords if k.arg == "name"]
    if isinstance(value, ast.Constant):
        return [str(value.value)]
    if isinstance(value, ast.Call) and _called(value) == "outcome_metric":
        return [metric_names.outcome_metric(outcome.value) for outcome in Outcome]
    if isinstance(value, ast.Attribute) and value.attr == "metric":
        return []  # the monitor's Figure.metric: covered by metric_names.SPECS
    raise AssertionError(f"metric name not understood: {ast.dump(value)}")


def _added_dimensions(tree: ast.AST, call: ast.Call) -> set[str]:
    """Dimensions a `with single_metric(...) as m:` block adds with m.add_dimension(name=...)."""
    added: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.With) and any(item.context_expr is call for item in node.items):
            for inner in ast.walk(node):
                if isinstance(inner, ast.Call) and _called(inner) == "add_dimension":
                    for k in inner.keywords:
                        if k.arg == "name" and isinstance(k.value, ast.Constant):
                            added.add(str(k.value.value))
    return added


def _resource_of(value: Any, resources: dict[str, Any]) -> str | None:
    """The type of the template resource a dimension value names (Ref, GetAtt, ${X} in a Sub)."""
    name = None
    if isinstance(value, dict) and "Ref" in value:
        name = value["Ref"]
    elif isinstance(value, dict) and "Fn::GetAtt" in value:
        name = value["Fn::GetAtt"][0]
    elif isinstance(value, str) and (match := re.fullmatch(r"\$\{([A-Za-z0-9]+)(\.\w+)?\}", value)):
        name = match.group(1)
    if name is None or name not in resources:
        return None
    return str(resources[name]["Type"])


def _rule_names(resources: dict[str, Any]) -> list[Any]:
    return [
        event["Properties"].get("RuleName")
        for r in resources.values()
        if r["Type"] == "AWS::Serverless::Function"
        for event in r["Properties"].get("Events", {}).values()
        if event["Type"] == "EventBridgeRule"
    ]


def _check_metric(
    where: str, namespace: str, name: str, dims: dict[str, Any], resources: dict[str, Any]
) -> None:
    ours = _published_by_code()
    if namespace.startswith("AWS/"):
        wanted = AWS_METRICS.get((namespace, name))
        assert wanted is not None, f"{where}: {namespace} {name} is not a metric we know AWS sends"
        assert set(dims) == set(wanted), f"{where}: dimensions {sorted(dims)}"
        for dim, kinds in wanted.items():
            if kinds == ("EventBridgeRule",):
                value = dims[dim]
                sub = value if isinstance(value, str) else value.get("Fn::Sub")
                assert {"Fn::Sub": sub} in _rule_names(resources) or sub in [
                    r.get("Fn::Sub") if isinstance(r, dict) else r for r in _rule_names(resources)
                ], f"{where}: RuleName {value}"
            else:
                assert _resource_of(dims[dim], resources) in kinds, f"{where}: {dim}={dims[dim]}"
        return
    published = ours.get((namespace, name))
    assert published is not None, f"{where}: nothing publishes {namespace} {name}"
    assert tuple(dims) in published or tuple(sorted(dims)) in {
        tuple(sorted(p)) for p in published
    }, f"{where}: {name} is published with {published}, not {tuple(dims)}"
    if namespace == metric_names.NAMESPACE:
        _check_our_values(where, dims)
    if "service" in dims:
        assert dims["service"] in SERVICES[(namespace, name)], f"{where}: service {dims['service']}"


def _check_our_values(where: str, dims: dict[str, Any]) -> None:
    here, peer = (
        ({"Ref": "AWS::Region"}, "${AWS::Region}"),
        ({"Ref": "PeerRegion"}, "${PeerRegion}"),
    )
    for dim, value in dims.items():
        if dim == metric_names.DIMENSION_ENVIRONMENT:
            assert value in ({"Ref": "Environment"}, "${Environment}"), where
        elif dim == metric_names.DIMENSION_STORE:
            assert value in {store.value for store in metric_names.Store}, where
        elif dim == metric_names.DIMENSION_TARGET_REGION:
            assert value in (*here, *peer), where
        elif dim == metric_names.DIMENSION_REGION:
            assert value in here, where


def _alarm_metrics(alarm: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    if "MetricName" in alarm:
        dims = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        yield alarm["Namespace"], alarm["MetricName"], dims
    for query in alarm.get("Metrics", []):
        if "MetricStat" in query:
            metric = query["MetricStat"]["Metric"]
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            yield metric["Namespace"], metric["MetricName"], dims


@pytest.mark.parametrize(("path", "name", "alarm"), ALARMS, ids=[f"{p}:{n}" for p, n, _ in ALARMS])
def test_every_alarm_watches_a_metric_that_is_published(
    path: str, name: str, alarm: dict[str, Any]
) -> None:
    resources = _doc(
        ROOT / ("template.yaml" if path == "template.yaml" else f"infra-global/{path}")
    )["Resources"]
    metrics = list(_alarm_metrics(alarm))
    assert metrics, name
    for namespace, metric, dims in metrics:
        _check_metric(f"{path}:{name}", namespace, metric, dims, resources)


def _dashboard() -> tuple[dict[str, Any], dict[str, Any]]:
    template = _doc(ROOT / "template.yaml")
    [dashboard] = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    # A number parameter stands unquoted where CloudWatch wants a number (an annotation value).
    numbers = re.findall(r":\s*\$\{(\w+)\}", body)
    assert all(template["Parameters"][name]["Type"] == "Number" for name in numbers)
    return json.loads(re.sub(r"(:\s*)\$\{\w+\}", r"\g<1>0", body)), template["Resources"]


def test_every_dashboard_metric_is_published() -> None:
    body, resources = _dashboard()
    rows = [
        row
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for row in widget["properties"]["metrics"]
    ]
    assert len(rows) > 20
    for row in rows:
        fields = [f for f in row if not isinstance(f, dict)]
        namespace, name, *pairs = fields
        dims = dict(zip(pairs[::2], pairs[1::2], strict=True))
        _check_metric(f"dashboard {name}", namespace, name, dims, resources)


def test_the_dashboard_shows_every_alarm_of_the_stack() -> None:
    body, resources = _dashboard()
    [widget] = [w for w in body["widgets"] if w["type"] == "alarm"]
    shown = {
        re.fullmatch(r"\$\{(\w+)\.Arn\}", arn).group(1) for arn in widget["properties"]["alarms"]
    }  # type: ignore[union-attr]
    alarms = {name for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}
    assert shown == alarms


def test_the_template_alarms_on_the_monitors_lag_figures_for_every_store() -> None:
    resources = _doc(ROOT / "template.yaml")["Resources"]
    watched = {
        (metric, dims.get("Store"))
        for r in resources.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        for _, metric, dims in _alarm_metrics(r["Properties"])
    }
    for store in metric_names.Store:
        assert any(m in metric_names.LAG_FIGURES and s == store for m, s in watched), store
        assert (metric_names.CANARY_AGE, store.value) in watched
    assert (metric_names.REGION_HEALTHY, None) in watched
    assert (metric_names.FIGURES_MISSING, None) in watched
