"""The CI/CD pipeline's promises (issue 10), checked on the workflow files themselves: OIDC only,
tests before any build, one build for every environment, drctl for every deploy, prod last and
behind its own GitHub environment. (Schema and security lint run in `make validate`.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"


def _load(name: str) -> dict[str, Any]:
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub means the string
    document = yaml.safe_load((WORKFLOWS / name).read_text())
    return {("on" if key is True else key): value for key, value in document.items()}


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps", []))


def test_no_stored_aws_keys_anywhere() -> None:
    for path in WORKFLOWS.glob("*.yml"):
        text = path.read_text()
        assert "aws-access-key-id" not in text and "aws-secret-access-key" not in text, path
        assert "secrets." not in text, path  # nothing to store: OIDC needs no secret


def test_tests_gate_the_build_and_the_build_gates_every_deploy() -> None:
    jobs = _load("ci-cd.yml")["jobs"]
    assert any("make test" in step.get("run", "") for step in _steps(jobs["test"]))
    assert jobs["build"]["needs"] == "test"
    assert jobs["build"]["if"] == "github.event_name != 'pull_request'"
    assert any("make build" in step.get("run", "") for step in _steps(jobs["build"]))
    chain = [
        ("deploy-dev", "build"),
        ("deploy-staging", "deploy-dev"),
        ("deploy-prod", "deploy-staging"),
    ]
    for job, before in chain:
        assert jobs[job]["needs"] == before
        assert jobs[job]["uses"] == "./.github/workflows/deploy.yml"
    assert [jobs[j]["with"]["environment"] for j, _ in chain] == ["dev", "staging", "prod"]


def test_only_deploy_jobs_may_ask_for_an_oidc_token() -> None:
    workflow = _load("ci-cd.yml")
    assert workflow["permissions"] == {"contents": "read"}
    for name, job in workflow["jobs"].items():
        wants_token = job.get("permissions", {}).get("id-token") == "write"
        assert wants_token == name.startswith("deploy-"), name


def test_a_deploy_runs_in_its_environment_with_the_role_and_drctl() -> None:
    workflow = _load("deploy.yml")
    assert set(workflow["on"]) == {"workflow_call"}
    (job,) = workflow["jobs"].values()
    # the environment gates the job (required reviewers on prod) and scopes the role's trust
    assert job["environment"]["name"] == "${{ inputs.environment }}"
    assert job["permissions"]["id-token"] == "write"
    steps = _steps(job)
    uses = [step.get("uses", "") for step in steps]
    assert all(re.search(r"@[0-9a-f]{40}$", u) for u in uses if u), "actions pinned by SHA"
    credentials = next(s for s in steps if "configure-aws-credentials" in s.get("uses", ""))
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"
    # credentials outlive the job: a first deploy waits long on Aurora
    assert int(credentials["with"]["role-duration-seconds"]) >= job["timeout-minutes"] * 60
    runs = [step.get("run", "") for step in steps]
    preflight = next(i for i, r in enumerate(runs) if "drctl preflight" in r)
    deploy = next(i for i, r in enumerate(runs) if r.strip().endswith('deploy --env "$DEPLOY_ENV"'))
    download = next(i for i, u in enumerate(uses) if "download-artifact" in u)
    assert download < preflight < deploy  # the tested build, checked before it is deployed
    assert not any("sam deploy" in r or "sam sync" in r for r in runs)  # drctl only


def test_the_oidc_role_trusts_one_repository_environment_only() -> None:
    from ops.drctl.template import load_template

    role = load_template(ROOT / "ops" / "ci" / "github-oidc-role.yaml").document["Resources"][
        "DeployRole"
    ]
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    equals = statement["Condition"]["StringEquals"]
    assert equals["token.actions.githubusercontent.com:aud"] == "sts.amazonaws.com"
    assert equals["token.actions.githubusercontent.com:sub"] == {
        "Fn::Sub": "repo:${GitHubRepository}:environment:${Environment}"
    }
    assert "StringLike" not in statement["Condition"]  # no wildcard subjects


def test_pre_commit_runs_the_same_static_gates_as_make_test() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    entries = {hook["entry"] for repo in config["repos"] for hook in repo["hooks"]}
    makefile = (ROOT / "Makefile").read_text()
    gates = re.search(r"^test: (.*?) ##", makefile, re.M)
    assert gates is not None
    static = {g for g in gates.group(1).split() if g in ("lint", "typecheck", "validate")}
    assert static == {"lint", "typecheck", "validate"}
    assert entries == {f"make {gate}" for gate in static}
