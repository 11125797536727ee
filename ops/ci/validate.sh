#!/usr/bin/env bash
# Static gates for every CloudFormation/SAM template in the repo: sam validate (plain and --lint),
# a SAM translation check, cfn-lint (0 errors, 0 warnings) and checkov (0 failed checks, every skip
# inline with its reason); then the CI workflows (GitHub's schema, zizmor, actionlint when on PATH)
# and the pre-commit config. Offline, no AWS credentials. Run from anywhere: `make validate`.
set -euo pipefail
cd "$(dirname "$0")/../.."

TOOLS=${TOOLS:-.venv-tools/bin}
for tool in sam cfn-lint checkov python check-jsonschema zizmor pre-commit; do
  [[ -x $TOOLS/$tool ]] || { echo "missing $TOOLS/$tool: run \`make tools\`" >&2; exit 2; }
done

# Offline: no telemetry, no instance-metadata probing, a region for SAM's translator.
export SAM_CLI_TELEMETRY=0 AWS_EC2_METADATA_DISABLED=true AWS_DEFAULT_REGION=us-east-1
export BC_SKIP_MAPPING=TRUE

# Every template: the SAM stack plus each infra-global/*.yaml (other stacks land there over time).
# stacks.yaml is drctl's deploy plan, not a template.
NOT_TEMPLATES=(infra-global/stacks.yaml)
templates=(template.yaml)
shopt -s nullglob
for f in infra-global/*.yaml infra-global/*.yml; do
  [[ " ${NOT_TEMPLATES[*]} " == *" $f "* ]] || templates+=("$f")
done
shopt -u nullglob
# Not in drctl's plan, deployed once by an administrator: the CI/CD role.
templates+=(ops/ci/github-oidc-role.yaml)
workflows=(.github/workflows/*.yml)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=0

# gate NAME CMD...: runs CMD quietly, prints one line with the time; the output only on failure.
gate() {
  local name=$1; shift
  local start=$EPOCHREALTIME rc=0
  "$@" >"$work/out" 2>&1 || rc=$?
  local secs
  secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
  if ((rc == 0)); then
    printf 'PASS  %-44s %5ss\n' "$name" "$secs"
    grep -E '^(NOTE|SKIP) ' "$work/out" | sed 's/^/      /' || true
  else
    printf 'FAIL  %-44s %5ss\n' "$name" "$secs"
    sed 's/^/      /' "$work/out"
    failed=1
  fi
}

# Plain validate catches what --lint does not (e.g. DeadLetterConfig with both Arn and Type).
# Use the role config-envs: the default one sets lint = true, and these prove samconfig parses.
sam_validate_plain() {
  "$TOOLS/sam" validate --config-env primary
  "$TOOLS/sam" validate --config-env secondary
}

sam_validate_lint() {
  "$TOOLS/sam" validate --lint
}

# The SAM transform, offline, for both roles and both SnapStart settings, plus the invariant that
# matters most (seed #10): the payment rule invokes the `live` alias and has a DLQ + retry policy.
sam_translate() {
  "$TOOLS/python" ops/ci/sam_translate.py check template.yaml
}

cfn_lint() {
  local extra=()
  if "$TOOLS/python" -c 'import cfn_lint_serverless' 2>/dev/null; then
    extra=(--append-rules cfn_lint_serverless.rules)
  else
    echo "SKIP serverless rules: cfn-lint-serverless is not installed in .venv-tools"
  fi
  # Exit code is a bitmask (2 error, 4 warning, 8 informational); warnings fail the gate too.
  "$TOOLS/cfn-lint" --non-zero-exit-code warning "${extra[@]}" -- "${templates[@]}"
}

# checkov exits 0 on templates it cannot parse, so read its JSON: fail on failed checks, parse
# errors and skips without a reason; say which templates had no applicable check at all.
checkov_scan() {
  local args=() t
  for t in "${templates[@]}"; do args+=(-f "$t"); done
  "$TOOLS/checkov" "${args[@]}" --framework cloudformation --skip-download -o json >"$work/checkov.json" \
    2>"$work/checkov.err" || true
  "$TOOLS/python" - "$work/checkov.json" "${templates[@]}" <<'PY'
import json
import sys

try:
    with open(sys.argv[1], encoding="utf-8") as fh:
        report = json.load(fh)
except ValueError:
    print("checkov produced no JSON report")
    sys.exit(1)
reports = report if isinstance(report, list) else [report]
results = {"passed_checks": [], "failed_checks": [], "skipped_checks": [], "parsing_errors": []}
for rep in reports:
    for key in results:
        results[key] += rep.get("results", {}).get(key, [])

bad = False
for path in results["parsing_errors"]:
    print(f"parse error: {path}")
    bad = True
for check in results["failed_checks"]:
    print(f"{check['check_id']}  {check['file_path'].lstrip('/')}  {check['resource']}  {check['check_name']}")
    bad = True
for check in results["skipped_checks"]:
    reason = (check.get("check_result") or {}).get("suppress_comment", "").strip()
    if not reason or reason == "No comment provided":
        print(f"skip without a reason: {check['check_id']} {check['resource']}")
        bad = True
seen = {c["file_path"].lstrip("/") for k in ("passed_checks", "failed_checks", "skipped_checks") for c in results[k]}
for path in sys.argv[2:]:
    if path not in seen and path not in {p.lstrip("/") for p in results["parsing_errors"]}:
        print(f"NOTE {path}: no applicable checkov checks")
print(
    f"passed {len(results['passed_checks'])}, failed {len(results['failed_checks'])}, "
    f"skipped {len(results['skipped_checks'])} (inline)"
)
sys.exit(1 if bad else 0)
PY
}

# The workflow files: GitHub's own schema (vendored in check-jsonschema, no download), zizmor's
# audit (.github/zizmor.yml; offline: no GitHub API), and actionlint's expression and type checks
# when an actionlint binary is on PATH (requirements/tools.txt says why it is not installed here).
workflows_check() {
  "$TOOLS/check-jsonschema" --builtin-schema vendor.github-workflows "${workflows[@]}"
  "$TOOLS/zizmor" --offline --no-progress --format plain "${workflows[@]}"
  if command -v actionlint >/dev/null 2>&1; then
    actionlint "${workflows[@]}"
  else
    echo "SKIP actionlint: not on PATH (no wheel on this index; schema and zizmor ran)"
  fi
}

precommit_config() {
  "$TOOLS/pre-commit" validate-config .pre-commit-config.yaml
}

echo "templates: ${templates[*]}"
gate "sam validate (config-env primary, secondary)" sam_validate_plain
gate "sam validate --lint" sam_validate_lint
gate "sam translate (2 roles x SnapStart on/off)" sam_translate
gate "cfn-lint (0 errors, 0 warnings)" cfn_lint
gate "checkov (0 failed, reasoned inline skips)" checkov_scan
gate "workflows (schema, zizmor, actionlint)" workflows_check
gate "pre-commit config" precommit_config

if ((failed)); then
  echo "validate: FAILED"
  exit 1
fi
echo "validate: all gates passed"
