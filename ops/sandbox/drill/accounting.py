"""The drill's report: every payment the producer sent looked for in the final ledger, per
scenario, with the timeline of each procedure read from drctl's own --report files and the
drill's timestamps (one clock: UTC wall time).

Figures (README "The drill" says the same for users):
- sent: payments the global endpoint accepted (first sends; `resends` counts the same payment
  sent again unchanged; `invalid` the ones that must be rejected)
- processed: valid payments of the scenario found in the final ledger
- duplicate_answers: processor answers DUPLICATE (a resend, a second delivery, a redrive of
  what the ledger had)
- parked_to_standby: answers PARKED, by region (the passive region parks every event it gets)
- redriven: replays by the procedures' redrive (and, last scenario, the final redrive and
  reconcile), by outcome
- LOST: sent, valid, in no ledger after redrive + reconcile. DUPLICATED: a payment with more
  than its two ledger entries, or a currency whose merchant net differs from what was sent
- ledger sums: SUM(ledger_entries.amount_minor) per currency (must be 0)
- timeline: failure injected (or procedure started) -> detected -> fenced -> promoted -> first
  payment processed in the new region -> redrive done; RTO = redrive done - failure injected
- exposure: ledger commits the new writer did not have when it was promoted (failover: what the
  dead primary had committed and never replicated, read from its stale data when it came back;
  planned switches: what the old writer had that the new one lacked); recovered_by_redrive:
  those in the ledger when the procedure ended; rpo_after_redrive: those still missing then
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from ops.sandbox import lifecycle
from ops.sandbox.drill.harness import iso, parse_iso
from ops.sandbox.state import State

SCENARIOS = ("failover", "failback", "switchover")


def _ledger(drill: Any) -> dict[str, Any]:
    state = State.load(drill.paths) or drill.state
    topology = lifecycle.ledger(state)
    with topology.primary.root("payments") as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT payment_id, type, currency, amount_minor, processed_region FROM payments"
        )
        payments = {row[0]: row for row in cur.fetchall()}
        cur.execute("SELECT payment_id, account, amount_minor, currency FROM ledger_entries")
        entries = cur.fetchall()
    replica_ids: set[str] | None = None
    for region in topology.replica_regions:
        try:
            topology.wait_caught_up(region, timeout=30)
            with topology.servers[region].root("payments") as conn, conn.cursor() as cur:
                cur.execute("SELECT payment_id FROM payments")
                replica_ids = {row[0] for row in cur.fetchall()}
        except Exception:  # noqa: BLE001 - reported as not comparable
            replica_ids = None
    return {"payments": payments, "entries": entries, "replica_ids": replica_ids}


def _steps(procedure: Any) -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in procedure.report.get("steps", [])}


def _first_processed(drill: Any, region: str, after: float) -> float | None:
    moments = [
        d.at
        for d in drill.deliveries.snapshot()
        if d.region == region and d.outcome == "PROCESSED" and d.at >= after
    ]
    return min(moments) if moments else None


def _timeline(drill: Any, procedure: Any, start: float, start_label: str) -> dict[str, Any]:
    steps = _steps(procedure)
    target = procedure.report.get("to")
    promoted = steps.get("promote", {}).get("ended_at")
    moments: dict[str, float | None] = {start_label: start}
    if start_label == "failure_injected":
        detected = drill.facts.get("detection", {}).get("detected_at")
        moments["detected"] = parse_iso(detected) if detected else None
    moments["fenced"] = parse_iso(steps["fence"]["ended_at"]) if "fence" in steps else None
    moments["promoted"] = parse_iso(promoted) if promoted else None
    fence_start = parse_iso(steps["fence"]["started_at"]) if "fence" in steps else start
    moments["first_payment_in_new_region"] = (
        _first_processed(drill, target, fence_start) if target else None
    )
    redrive = steps.get("redrive", {}).get("ended_at")
    moments["redrive_done"] = parse_iso(redrive) if redrive else None
    timeline = {
        name: {"at": iso(at), "after_s": round(at - start, 3)} if at else None
        for name, at in moments.items()
    }
    rto = moments["redrive_done"]
    return {
        "to": target,
        "moments": timeline,
        "rto_s": round(rto - start, 3) if rto else None,
        "writes_resumed_after_s": (
            round(moments["first_payment_in_new_region"] - start, 3)
            if moments["first_payment_in_new_region"]
            else None
        ),
        "drctl_exit": procedure.exit_code,
        "drctl_summary": [
            {"step": s["id"], "seconds": round(s["seconds"], 3), "outcome": s["outcome"]}
            for s in procedure.report.get("steps", [])
        ],
        "promotion": procedure.report.get("promotion") or procedure.report.get("case"),
    }


def _redriven(procedures: list[Any]) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for procedure in procedures:
        for result in procedure.report.get("redrive", []) or []:
            counts.update(result.get("outcomes", {}))
        reconcile = procedure.report.get("reconcile") or {}
        counts.update({f"reconcile {k}": v for k, v in (reconcile.get("replayed") or {}).items()})
    return dict(sorted(counts.items()))


def _final_counts(drill: Any) -> dict[str, int]:
    """The last redrive and reconcile print their counts (no --report): read their logs."""
    counts: Counter[str] = Counter()
    for procedure in drill.procedures:
        if procedure.command[0] not in ("redrive", "reconcile"):
            continue
        text = open(procedure.log).read()
        for line in text.splitlines():
            if "replayed:" in line and "->" in line:
                for part in line.split("replayed:", 1)[1].split(","):
                    words = part.split()
                    if len(words) == 2 and words[1].isdigit():
                        counts[f"final {words[0]}"] += int(words[1])
    return dict(counts)


def _exposure_failover(drill: Any, final_ids: set[str]) -> dict[str, Any]:
    facts = drill.facts
    stale = set(facts.get("stale_primary", []))
    replicated = set(facts.get("replicated_before_kill", []))
    after_failover = set(facts.get("ledger_after_failover", []))
    exposure = stale - replicated
    window = set(facts.get("residual_window", {}).get("accepted_not_replicated_at_kill", []))
    reconcile = (
        next(
            (p.report.get("reconcile") for p in drill.procedures if p.command[0] == "failover"),
            None,
        )
        or {}
    )
    unresolved = {u["payment_id"] for u in reconcile.get("unresolved", [])}
    return {
        "reconcile_unresolved_at_failover": sorted(unresolved),
        "reconcile_unresolved_in_ledger_in_the_end": len(unresolved & final_ids),
        "commits_not_replicated_at_kill": len(exposure),
        "recovered_by_redrive": len(exposure & after_failover),
        "rpo_after_redrive": len(exposure - after_failover),
        "recovered_in_the_end": len(exposure & final_ids),
        "missing_in_the_end": sorted(exposure - final_ids),
        "ids": sorted(exposure),
        "residual_window": {
            "accepted_by_dead_region_not_yet_replicated": len(window),
            "of_which_committed_there": len(window & stale),
            "in_ledger_after_failover": len(window & after_failover),
            "in_ledger_in_the_end": len(window & final_ids),
            "would_be_lost_if_the_region_never_returned": len(window - after_failover),
            "eventbridge_lag_s": facts.get("residual_window", {}).get("eventbridge_lag_s"),
            "ids": sorted(window),
        },
    }


def _exposure_planned(check: dict[str, Any] | None) -> dict[str, Any]:
    missing = (check or {}).get("missing_in_new", [])
    return {
        "commits_not_replicated_at_promotion": len(missing),
        "rpo_after_redrive": len(missing),
        "ids": missing,
        "old_writer": (check or {}).get("old_writer"),
        "new_writer": (check or {}).get("new_writer"),
    }


def _scenario(
    name: str, drill: Any, ledger: dict[str, Any], by_payment: dict[str, list[Any]]
) -> dict[str, Any]:
    payments = [p for p in drill.stream.payments.values() if p.scenario == name and p.accepted_at]
    ids = {p.payment_id for p in payments}
    valid = {p.payment_id for p in payments if p.valid}
    invalid = ids - valid
    in_ledger = set(ledger["payments"])
    answers: Counter[str] = Counter()
    by_region: Counter[str] = Counter()
    duplicate_kinds: Counter[str] = Counter()
    parked: Counter[str] = Counter()
    resent = {p.payment_id for p in payments if p.resends}
    for payment_id in ids:
        for answer in by_payment.get(payment_id, []):
            answers[answer.outcome] += 1
            by_region[f"{answer.region} {answer.outcome}"] += 1
            if answer.outcome == "DUPLICATE":
                if answer.duplicate_delivery:
                    cause = "delivered twice (EventBridge: at least once)"
                elif payment_id in resent:
                    cause = "sent again by the producer"
                else:
                    cause = "the other region had it already (its copy, or a redelivery)"
                duplicate_kinds[cause] += 1
            if answer.outcome == "PARKED":
                parked[f"{answer.region} {answer.code}"] += 1
    entries_count: Counter[str] = Counter()
    sums: dict[str, int] = defaultdict(int)
    for payment_id, _account, amount, currency in ledger["entries"]:
        if payment_id in ids:
            entries_count[payment_id] += 1
            sums[currency] += int(amount)
    duplicated = sorted(pid for pid, count in entries_count.items() if count != 2)
    procedures = [p for p in drill.procedures if p.scenario == name]
    return {
        "sent": len(payments),
        "invalid_sent": len(invalid),
        "resends": sum(p.resends for p in payments),
        "processed": len(valid & in_ledger),
        "answers": dict(sorted(answers.items())),
        "answers_by_region": dict(sorted(by_region.items())),
        "duplicate_answers": answers["DUPLICATE"],
        "duplicate_answers_by_cause": dict(duplicate_kinds),
        "parked_to_standby": answers["PARKED"],
        "parked_by_region_and_reason": dict(sorted(parked.items())),
        "redriven": _redriven(procedures),
        "lost": len(valid - in_ledger),
        "lost_ids": sorted(valid - in_ledger),
        "lost_details": [
            {
                "payment_id": pid,
                "accepted_by": drill.stream.payments[pid].accepted_region,
                "accepted_at": iso(drill.stream.payments[pid].accepted_at),
                "answers": [
                    f"{a.region} {a.outcome} {a.code} {iso(a.at)}" for a in by_payment.get(pid, [])
                ],
            }
            for pid in sorted(valid - in_ledger)[:20]
        ],
        "invalid_written": sorted(invalid & in_ledger),
        "duplicated": len(duplicated),
        "duplicated_ids": duplicated,
        "ledger_sums": dict(sorted(sums.items())),
    }


def _money(drill: Any, ledger: dict[str, Any]) -> dict[str, Any]:
    """Per currency: entries sum (0), and the merchants' net against what the producer sent."""
    expected: dict[str, int] = defaultdict(int)
    for payment in drill.stream.payments.values():
        if payment.valid and payment.accepted_at:
            sign = 1 if payment.type == "CHARGE" else -1
            expected[payment.currency] += sign * payment.amount_minor
    sums: dict[str, int] = defaultdict(int)
    merchant: dict[str, int] = defaultdict(int)
    for _pid, account, amount, currency in ledger["entries"]:
        sums[currency] += int(amount)
        if str(account).startswith("merchant:"):
            merchant[currency] += int(amount)
    currencies = sorted(set(expected) | set(sums))
    return {
        currency: {
            "entries_sum": sums.get(currency, 0),
            "merchant_net": merchant.get(currency, 0),
            "sent_net": expected.get(currency, 0),
        }
        for currency in currencies
    }


def _waits(drill: Any) -> dict[str, Any]:
    """Per region, how long events waited between the rule's delivery and the processor's
    answer (Lambda's queue: throttling while fenced, retries, backlog)."""
    from ops.sandbox.drill.global_tables import Lag

    found: dict[str, Lag] = defaultdict(Lag)
    for answer in drill.deliveries.snapshot():
        found[answer.region].add(answer.waited_s)
    return {region: lag.summary() for region, lag in sorted(found.items())}


def report(drill: Any, plan: dict[str, Any], seconds: float) -> dict[str, Any]:
    ledger = _ledger(drill)
    final_ids = set(ledger["payments"])
    by_payment: dict[str, list[Any]] = defaultdict(list)
    for answer in drill.deliveries.snapshot():
        by_payment[answer.payment_id].append(answer)
    scenarios = {name: _scenario(name, drill, ledger, by_payment) for name in SCENARIOS}
    procedure = {p.command[0] + ("-fence" if "--fence-only" in p.command else ""): p
                 for p in drill.procedures}  # fmt: skip
    kill = drill.timeline.first("primary region killed")
    if "failover" in procedure and kill:
        scenarios["failover"]["timeline"] = _timeline(
            drill, procedure["failover"], kill, "failure_injected"
        )
        scenarios["failover"]["detection"] = drill.facts.get("detection")
        scenarios["failover"]["exposure"] = _exposure_failover(drill, final_ids)
    for name in ("failback", "switchover"):
        if name in procedure:
            scenarios[name]["timeline"] = _timeline(
                drill, procedure[name], procedure[name].started_at, "procedure_started"
            )
            scenarios[name]["exposure"] = _exposure_planned(drill.facts.get(f"{name}_writer_check"))
    scenarios["switchover"]["redriven"] = {
        **scenarios["switchover"]["redriven"],
        **_final_counts(drill),
    }
    money = _money(drill, ledger)
    sent_total = sum(s["sent"] for s in scenarios.values())
    checks = {
        "no payment lost": all(s["lost"] == 0 for s in scenarios.values()),
        "no payment charged twice": all(s["duplicated"] == 0 for s in scenarios.values())
        and all(m["merchant_net"] == m["sent_net"] for m in money.values()),
        "every currency sums to 0": all(m["entries_sum"] == 0 for m in money.values()),
        "no invalid payment written": all(not s["invalid_written"] for s in scenarios.values()),
        "planned switches lose nothing (exposure 0)": all(
            scenarios[n].get("exposure", {}).get("commits_not_replicated_at_promotion") == 0
            for n in ("failback", "switchover")
        ),
        "Route 53 detection within interval x threshold": bool(
            (drill.facts.get("detection") or {}).get("within_bound")
        ),
        "every drctl command succeeded": all(p.exit_code == 0 for p in drill.procedures),
        "replica holds what the writer holds": ledger["replica_ids"] == final_ids,
    }
    return {
        "plan": plan,
        "seconds": round(seconds, 1),
        "sent_total": sent_total,
        "scenarios": scenarios,
        "money": money,
        "replication_lag": {
            "global_tables": drill.tables.lag.summary(),
            "buckets": drill.buckets.lag.summary(),
        },
        "delivery_wait": _waits(drill),
        "timeline": [
            {"at": iso(at), "event": name, **facts} for name, at, facts in drill.timeline.moments
        ],
        "procedures": [
            {
                "command": "drctl " + " ".join(p.command),
                "scenario": p.scenario,
                "exit": p.exit_code,
                "seconds": round(p.ended_at - p.started_at, 3),
                "log": str(p.log),
            }
            for p in drill.procedures
        ],
        "checks": checks,
        "passed": all(checks.values()),
    }


def _s(value: Any) -> str:
    return "-" if value is None else f"{value:.1f}s" if isinstance(value, float) else str(value)


def render(document: dict[str, Any]) -> list[str]:
    plan = document["plan"]
    how = f"seed {plan['seed']}" if plan["seed"] is not None else "fixed plan"
    lines = [
        "",
        f"drill ({how}): {document['sent_total']} payments sent in {document['seconds']:.0f} s",
        "",
    ]
    header = ["SCENARIO", "SENT", "PROCESSED", "DUPLICATE", "PARKED", "REDRIVEN", "LOST",
              "DUPLICATED", "EXPOSURE", "RPO", "RTO"]  # fmt: skip
    rows = []
    for name, s in document["scenarios"].items():
        exposure = s.get("exposure", {})
        exposed = exposure.get(
            "commits_not_replicated_at_kill", exposure.get("commits_not_replicated_at_promotion")
        )
        rows.append(
            [
                name, str(s["sent"]), str(s["processed"]), str(s["duplicate_answers"]),
                str(s["parked_to_standby"]), str(sum(s["redriven"].values())), str(s["lost"]),
                str(s["duplicated"]), _s(exposed), _s(exposure.get("rpo_after_redrive")),
                _s(s.get("timeline", {}).get("rto_s")),
            ]
        )  # fmt: skip
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    lines.append("")
    money = ", ".join(
        f"{c} {m['entries_sum']} (net {m['merchant_net']} = sent {m['sent_net']})"
        for c, m in document["money"].items()
    )
    lines.append(f"ledger sums per currency: {money}")
    for name, s in document["scenarios"].items():
        timeline = s.get("timeline")
        if not timeline:
            continue
        parts = [
            f"{label} +{moment['after_s']:.2f}s" if moment else f"{label} -"
            for label, moment in timeline["moments"].items()
        ]
        lines.append(f"{name} timeline ({timeline['promotion']}): " + " -> ".join(parts))
    detection = document["scenarios"]["failover"].get("detection") or {}
    if detection.get("detected"):
        lines.append(
            f"Route 53 detection: UNHEALTHY {detection['wall_seconds']:.2f}s after the kill = "
            f"{detection['route53_seconds']:.0f}s on Route 53's clock (bound: interval "
            f"{detection['interval_s']}s x threshold {detection['failure_threshold']} = "
            f"{detection['bound_s']:.0f}s, {detection['source']}; drill clock "
            f"{detection['speedup']:g}x)"
        )
    exposure = document["scenarios"]["failover"].get("exposure") or {}
    window = exposure.get("residual_window") or {}
    if exposure:
        lines.append(
            f"failover exposure: {exposure['commits_not_replicated_at_kill']} ledger commits had "
            f"not reached the replica at the kill; {exposure['recovered_by_redrive']} recovered by "
            f"the failover's redrive + reconcile, {exposure['recovered_in_the_end']} in the end"
        )
        lines.append(
            "residual loss window (EventBridge's own replication, ARCHITECTURE.md): "
            f"{window.get('accepted_by_dead_region_not_yet_replicated', 0)} events accepted by the "
            "dying region had not been replicated; "
            f"{window.get('would_be_lost_if_the_region_never_returned', 0)} of them reached the "
            "ledger only when the region came back (modelled: an outage keeps them in the "
            "region; a region that never returns would lose them)"
        )
    lines.append("")
    for check, ok in document["checks"].items():
        lines.append(f"  [{'ok' if ok else 'FAILED'}] {check}")
    lines.append(f"drill {'PASSED' if document['passed'] else 'FAILED'}")
    return lines
