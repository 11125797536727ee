"""`make drill`: a region lost and won back under a steady stream of payments, with the real
`drctl` against the two-region sandbox, and a report of what was lost, charged twice, and how
long each step took.

    1 failover    replication held back, the primary region killed (its MariaDB SIGKILLed, its
                  endpoints stop answering), Route 53 notices, `drctl failover`, the stream
                  goes on into the secondary
    2 failback    the old primary comes back (its stale data kept), `drctl failback --fence-only`
                  at once, then `drctl failback`
    3 switchover  a planned `drctl switchover` to the secondary under the same stream, with
                  replication lagging
    then          the stream stops, deliveries drain, `drctl redrive` and `drctl reconcile`, and
                  every payment the producer sent is looked for in the ledger

drctl runs as an operator runs it (a subprocess, AWS_ENDPOINT_URL = the sandbox, dummy keys): it
does not know it is in a sandbox. A seed draws the kill moment, the lags, the share of
duplicate deliveries, how the region dies, and whether Aurora refuses the managed failover (then
drctl detaches and promotes, and failback rebuilds); without a seed the plan is fixed.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib import request

from ops.sandbox import lifecycle, resources
from ops.sandbox.drill import accounting
from ops.sandbox.drill.eventbridge import DeliveryLog, GlobalEndpoint, RegionDelivery
from ops.sandbox.drill.global_tables import Buckets, GlobalTables
from ops.sandbox.drill.harness import Clients, Regions, Timeline, iso
from ops.sandbox.drill.route53 import HealthCheckConfig, HealthChecks
from ops.sandbox.drill.stream import PaymentStream
from ops.sandbox.state import DUMMY_CREDENTIALS, ROOT, Paths, State
from shared import names

DEFAULT_PAYMENTS = 1200
DEFAULT_RATE = 10.0
DEFAULT_SPEEDUP = 30.0
DRAIN_SECONDS = 120.0


@dataclass(frozen=True)
class Plan:
    """What one run does; drawn from the seed, or the fixed plan of `make drill`."""

    seed: int | None
    payments: int
    rate: float
    speedup: float
    kill_at: float  # share of the payments sent before the primary dies
    hold_lead_s: float  # replication held back this long before the kill
    kill_mode: str  # "hang": the dead region's endpoints never answer; "refuse": they drop
    refuse_managed_failover: bool  # Aurora refuses failover-global-cluster: detach-and-promote
    duplicate_delivery_rate: float
    eventbridge_lag_s: tuple[float, float]
    table_lag_s: tuple[float, float]
    bucket_lag_s: tuple[float, float]
    switchover_delay_s: int  # MASTER_DELAY during the planned switchover
    # Shares of `payments` sent after each procedure before the next step (the stream never
    # stops meanwhile); the drill ends once all are sent and at least `payments` in all.
    after_failover: float = 0.15
    after_failback: float = 0.15
    after_switchover: float = 0.1

    @classmethod
    def fixed(cls, payments: int, rate: float, speedup: float) -> Plan:
        return cls(
            seed=None, payments=payments, rate=rate, speedup=speedup, kill_at=0.3,
            hold_lead_s=2.0, kill_mode="hang", refuse_managed_failover=False,
            duplicate_delivery_rate=0.03, eventbridge_lag_s=(0.02, 0.15),
            table_lag_s=(0.1, 0.4), bucket_lag_s=(0.5, 2.0), switchover_delay_s=1,
        )  # fmt: skip

    @classmethod
    def seeded(cls, seed: int, payments: int, rate: float, speedup: float) -> Plan:
        rng = random.Random(seed)
        low = rng.uniform(0.005, 0.05)
        return cls(
            seed=seed, payments=payments, rate=rate, speedup=speedup,
            kill_at=rng.uniform(0.15, 0.35), hold_lead_s=rng.uniform(0.3, 3.0),
            kill_mode=rng.choice(("hang", "refuse")),
            refuse_managed_failover=rng.random() < 0.5,
            duplicate_delivery_rate=rng.uniform(0.0, 0.1),
            eventbridge_lag_s=(low, low + rng.uniform(0.01, 0.5)),
            table_lag_s=(0.05, rng.uniform(0.1, 1.5)),
            bucket_lag_s=(0.2, rng.uniform(0.5, 3.0)),
            switchover_delay_s=rng.randint(0, 3),
        )  # fmt: skip


@dataclass
class Procedure:
    """One drctl command as the drill ran it."""

    command: list[str]
    scenario: str
    started_at: float
    ended_at: float = 0.0
    exit_code: int = -1
    report: dict[str, Any] = field(default_factory=dict)
    log: str = ""


class Drill:
    def __init__(self, paths: Paths, plan: Plan, out: Any) -> None:
        self.paths = paths
        self.plan = plan
        self.out = out
        self.dir = paths.root / "drill"
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.rng = random.Random(plan.seed if plan.seed is not None else 20261130)
        self.timeline = Timeline()
        self.procedures: list[Procedure] = []
        self.facts: dict[str, Any] = {}

    # -- the sandbox as the drill starts it ------------------------------------------------------

    def _state(self) -> State:
        state = State.load(self.paths)
        if state is None or not state.is_running():
            raise lifecycle.SandboxNotRunning(
                f"no sandbox running in {self.paths.root}: run `make sandbox` first"
            )
        return state

    def _control(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.state.aws_endpoint_url}/_sandbox/{path}"
        data = json.dumps(body or {}).encode() if body is not None else None
        call = request.Request(url, data=data, method="POST" if data is not None else "GET")
        with request.urlopen(call, timeout=120) as answer:  # noqa: S310 - loopback only
            return dict(json.loads(answer.read()))

    def prepare(self) -> None:
        """The sandbox in its normal shape: us-east-1 writes, us-west-2 replicates with no lag,
        both regions answer. A previous drill's end (us-west-2 writing) is switched back; a
        sandbox in any other shape is started afresh."""
        self.state = self._state()
        shape = self._control("state")
        members = [
            m["region"]
            for cluster in (shape.get("rds") or {}).get("global_clusters", {}).values()
            for m in cluster["members"]
            if not m["resync"]
        ]
        normal = (
            not shape["dead"]
            and sorted(members) == sorted(self.state.regions.values())
            and all(p.is_running() for p in self.state.processes)
            and len(self.state.processes) == len({p.name for p in self.state.processes})
        )
        if not normal:
            self.out("drill: the sandbox is not in its normal shape: starting it afresh")
            lifecycle.down(self.paths, lambda _line: None)
            lifecycle.up(self.paths, lambda _line: None)
            self.state = self._state()
        self._control("faults", {})
        primary = self.state.regions["primary"]
        if lifecycle.ledger(self.state).writer != primary:
            rds = lifecycle.client(self.state, "rds", primary)
            rds.switchover_global_cluster(
                GlobalClusterIdentifier=names.global_cluster(self.state.env),
                TargetDbClusterIdentifier=f"arn:aws:rds:{primary}:123456789012:cluster:"
                f"{names.cluster('primary', self.state.env)}",
            )
            self.state = self._state()
        replica = self.state.regions["secondary"]

        def no_lag(ledger: Any) -> None:
            ledger.delay(0, replica)
            ledger.release(replica)

        lifecycle.change_ledger(self.paths, no_lag)
        reset(self.state, self.paths)
        self.clients = Clients(self.state.aws_endpoint_url)
        self.regions = Regions(dict(self.state.regions))
        self._configure_functions()

    def _configure_functions(self) -> None:
        """The drill runs Lambda's retry clock and Route 53's schedule `speedup` times faster;
        what is sized to them scales with them, deployed as drctl would: the processor's wait
        for a refund's charge (RefundChargeWaitSeconds, sized to Lambda's retries) in a new
        version `live` is moved to, the health function's answer cache (HEALTH_CACHE_SECONDS,
        a fraction of Route 53's interval) in the configuration its URL runs."""
        scaled = {
            names.processor_function: ("REFUND_CHARGE_WAIT_SECONDS", 120.0, True),
            names.health_function: ("HEALTH_CACHE_SECONDS", _health_cache_seconds(), False),
        }
        for role, region in self.state.regions.items():
            lam = self.clients.get("lambda", region)
            for function_name, (variable, seconds, publish) in scaled.items():
                name = function_name(role, self.state.env)
                current = lam.get_function_configuration(FunctionName=name)
                variables = dict(current["Environment"]["Variables"])
                value = str(round(seconds / self.plan.speedup, 3))
                if variables.get(variable) == value:
                    continue
                variables[variable] = value
                lam.update_function_configuration(
                    FunctionName=name, Environment={"Variables": variables}
                )
                if publish:
                    version = lam.publish_version(FunctionName=name)["Version"]
                    lam.update_alias(
                        FunctionName=name, Name=names.PROCESSOR_ALIAS, FunctionVersion=version
                    )

    # -- harness ---------------------------------------------------------------------------------

    def start_harness(self) -> None:
        plan, state = self.plan, self.state
        self.r53_config = HealthCheckConfig.from_templates()
        self.health = HealthChecks(
            self.clients, self.r53_config, state.regions, state.env,
            speedup=plan.speedup, timeline=self.timeline,
        ).start()  # fmt: skip
        self.tables = GlobalTables(
            self.clients, self.regions, state.env, lag=plan.table_lag_s, rng=self.rng
        ).start()
        buckets = {r: state.aws[role]["documents_bucket"] for role, r in state.regions.items()}
        self.buckets = Buckets(
            self.clients, self.regions, buckets, lag=plan.bucket_lag_s, rng=self.rng
        ).start()
        self.endpoint = GlobalEndpoint(
            self.clients, self.regions, self.health.healthy, state.env,
            lag=plan.eventbridge_lag_s, rng=self.rng,
        ).start()  # fmt: skip
        self.deliveries = DeliveryLog(self.timeline)
        self.delivery = {
            region: RegionDelivery(
                self.clients, self.regions, role, state.env,
                inbox_url=state.aws[role]["inbox_url"],
                failures_url=state.aws[role]["queue_urls"]["failures"],
                speedup=plan.speedup, duplicate_rate=plan.duplicate_delivery_rate,
                rng=random.Random(self.rng.random()), log=self.deliveries.add,
            ).start()
            for role, region in state.regions.items()
        }  # fmt: skip
        run_id = time.strftime("%H%M%S")
        self.stream = PaymentStream(
            self.endpoint, random.Random(self.rng.random()), plan.rate, run_id
        )

    def stop_harness(self) -> None:
        self.stream.stop()
        for delivery in self.delivery.values():
            delivery.stop()
        self.endpoint.stop()
        self.health.stop()
        self.tables.stop()
        self.buckets.stop()

    def drained(self, timeout: float = DRAIN_SECONDS) -> bool:
        """Every event delivered, replicated and answered (or parked)."""
        deadline = time.monotonic() + timeout
        sqs = {r: self.clients.get("sqs", r) for r in self.state.regions.values()}
        quiet_since = None
        busy: list[str] = []
        while time.monotonic() < deadline:
            busy = [] if self.endpoint.idle() else ["eventbridge replication"]
            busy += [] if self.tables.idle() else [f"global tables ({self.tables.backlog()})"]
            busy += [f"lambda {r}" for r, d in self.delivery.items() if not d.idle()]
            for role, region in self.state.regions.items():
                attributes = sqs[region].get_queue_attributes(
                    QueueUrl=self.state.aws[role]["inbox_url"],
                    AttributeNames=["ApproximateNumberOfMessages"],
                )["Attributes"]
                if int(attributes["ApproximateNumberOfMessages"]) > 0:
                    busy.append(f"rule target {region}")
            if busy:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 0.5:
                return True
            time.sleep(0.25)
        self.out(f"drill: still busy after {timeout:.0f}s: {', '.join(busy)}")
        return False

    # -- drctl, as an operator runs it ------------------------------------------------------------

    def drctl(self, scenario: str, *args: str) -> Procedure:
        number = len(self.procedures) + 1
        report = self.dir / f"{number:02d}-{args[0]}.json"
        report.unlink(missing_ok=True)
        command = [sys.executable, "-m", "ops.drctl.cli", *args, "--env", self.state.env]
        if args[0] in ("switchover", "failover", "failback"):
            command += ["--report", str(report)]
            if "--fence-only" not in args:
                command.append("--yes")
        environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        environment.update(DUMMY_CREDENTIALS)
        environment.update(
            AWS_ENDPOINT_URL=self.state.aws_endpoint_url,
            AWS_DEFAULT_REGION=self.state.regions["primary"],
        )
        procedure = Procedure(command[3:], scenario, time.time())
        self.timeline.mark(f"drctl {' '.join(args)} started", procedure.started_at)
        self.out(f"drill: $ drctl {' '.join(procedure.command)}")
        finished = subprocess.run(
            command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=900,
            check=False,
        )  # fmt: skip
        procedure.ended_at = self.timeline.mark(
            f"drctl {' '.join(args)} ended", exit=finished.returncode
        )
        procedure.exit_code = finished.returncode
        procedure.log = str(self.dir / f"{number:02d}-{args[0]}.log")
        Path(procedure.log).write_text(finished.stdout + "\n" + finished.stderr)
        if report.exists():
            procedure.report = json.loads(report.read_text())
        for line in finished.stdout.strip().splitlines():
            self.out(f"drill:   {line}")
        if finished.returncode != 0:
            self.out(f"drill:   exit {finished.returncode}; see {procedure.log}")
        self.procedures.append(procedure)
        return procedure

    # -- the ledger --------------------------------------------------------------------------------

    def ledger_ids(self, region: str, *, processed_in: str | None = None) -> set[str]:
        topology = lifecycle.ledger(State.load(self.paths) or self.state)
        sql = "SELECT payment_id FROM payments"
        args: tuple[Any, ...] = ()
        if processed_in:
            sql += " WHERE processed_region = %s"
            args = (processed_in,)
        with topology.servers[region].root("payments") as conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return {str(row[0]) for row in cur.fetchall()}

    # -- the scenarios ----------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        plan = self.plan
        primary, secondary = self.state.regions["primary"], self.state.regions["secondary"]
        self.started_at = self.timeline.mark("drill started")
        self.stream.scenario = "failover"
        self.stream.start()
        self.failover(primary, secondary)
        self._more(plan.after_failover)
        self.stream.scenario = "failback"
        self.failback(primary, secondary)
        self._more(plan.after_failback)
        self.stream.scenario = "switchover"
        self.switchover(primary, secondary)
        self._more(plan.after_switchover)
        self.stream.wait_sent(plan.payments, timeout=600)
        self.stream.stop()
        self.timeline.mark("stream stopped", sent=self.stream.sent())
        drained = self.drained()
        self.timeline.mark("deliveries drained", complete=drained)
        self.drctl("switchover", "redrive", "--queue", "standby", "--queue", "failures")
        since = iso(self.started_at - 60)
        self.drctl("switchover", "reconcile", "--since", since)
        self.drained(timeout=30)
        self.timeline.mark("final redrive and reconcile done")
        return self.facts

    def _more(self, share: float) -> None:
        self.stream.wait_sent(self.stream.sent() + int(self.plan.payments * share), timeout=600)

    def failover(self, primary: str, secondary: str) -> None:
        plan = self.plan
        kill_after = int(plan.payments * plan.kill_at)
        hold_at = max(0, kill_after - int(plan.hold_lead_s * plan.rate))
        self.stream.wait_sent(hold_at, timeout=300)
        self.state = State.load(self.paths) or self.state
        lifecycle.change_ledger(self.paths, lambda ledger: ledger.hold(secondary))
        self.timeline.mark("replication held", region=secondary)
        self.stream.wait_sent(kill_after, timeout=300)
        if plan.refuse_managed_failover:
            self._control("faults", {"refuse_failover": "InvalidGlobalClusterStateFault"})
        # A game day kills a region Route 53 sees healthy: a probe that a busy machine answered
        # late may have it UNHEALTHY for a moment, and that is no detection of the kill.
        self.health.wait_healthy(primary, timeout=30)
        # The region dies: its endpoints, its database, its Lambda and EventBridge with them.
        # The failure starts with the first step of the kill (a probe may fail during it).
        t_kill = time.time()
        self.regions.set(primary, dead=True)
        killed = self._control(
            f"regions/{primary}", {"state": "dead", "mode": plan.kill_mode, "kill_database": True}
        )
        self.timeline.mark("primary region killed", t_kill, **killed)
        window = self.endpoint.pending_from(primary)
        self.facts["residual_window"] = {
            "accepted_not_replicated_at_kill": sorted(r.payment_id for r in window),
            "eventbridge_lag_s": list(plan.eventbridge_lag_s),
        }
        bound = self.r53_config.detection_bound_seconds / plan.speedup + 2 * self.health.reply_limit
        change = self.health.wait_for(primary, False, t_kill, timeout=bound + 30)
        self.facts["detection"] = self._detection(t_kill, change)
        self.drctl("failover", "failover", "--to", "secondary")
        self._control("faults", {})
        self.facts["ledger_after_failover"] = sorted(self.ledger_ids(secondary))
        self.facts["replicated_before_kill"] = sorted(
            self.ledger_ids(secondary, processed_in=primary)
        )

    def _detection(self, t_kill: float, change: Any) -> dict[str, Any]:
        config, speedup = self.r53_config, self.plan.speedup
        found: dict[str, Any] = {
            "source": config.source,
            "interval_s": config.interval_seconds,
            "failure_threshold": config.failure_threshold,
            "bound_s": config.detection_bound_seconds,
            "speedup": speedup,
            "reply_limit_s": self.health.reply_limit,
        }
        if change is None:
            return found | {"detected": False}
        if change.at < t_kill:  # a slow probe made Route 53 flip before the failure
            return found | {
                "detected": False,
                "unhealthy_before_the_kill": iso(change.at),
                "within_bound": False,
            }
        # The deciding probe was sent (probe_sent_at - kill) after the failure on Route 53's
        # schedule, which runs `speedup` times faster here; its own wait is real time.
        since_kill = max(0.0, change.probe_sent_at - t_kill)
        route53_seconds = since_kill * speedup + change.probe_seconds
        return found | {
            "detected": True,
            "detected_at": iso(change.at),
            "wall_seconds": round(change.at - t_kill, 3),
            "route53_seconds": round(route53_seconds, 1),
            "within_bound": since_kill * speedup <= config.detection_bound_seconds,
        }

    def failback(self, primary: str, secondary: str) -> None:
        t_back = self.timeline.mark("old primary region back")
        self._control(f"regions/{primary}/database", {})
        self.facts["stale_primary"] = sorted(self.ledger_ids(primary))
        returned = self._control(f"regions/{primary}", {"state": "alive"})
        self.timeline.mark("old primary answers again", **returned)
        self.tables_catch_up(primary)
        self.regions.set(primary, dead=False)
        self.drctl("failback", "failback", "--fence-only")
        self.health.wait_for(primary, True, t_back, timeout=30)
        self.drctl("failback", "failback")
        self.facts["failback_writer_check"] = self._switch_check(secondary, primary)

    def tables_catch_up(self, region: str, timeout: float = 30.0) -> None:
        """A region that answers again gets what the global tables wrote meanwhile before its
        functions run (DynamoDB replicates to a recovered replica first)."""
        caught_up = self.tables.wait_caught_up(region, timeout)
        self.timeline.mark("global tables caught up", region=region, complete=caught_up)

    def switchover(self, primary: str, secondary: str) -> None:
        self.timeline.mark("switchover scenario")
        delay = self.plan.switchover_delay_s
        lifecycle.change_ledger(self.paths, lambda ledger: ledger.delay(delay, secondary))
        self.timeline.mark("replication lagging", delay_s=delay)
        self.drctl("switchover", "switchover", "--to", "secondary")
        self.facts["switchover_writer_check"] = self._switch_check(primary, secondary)

    def _switch_check(self, old: str, new: str) -> dict[str, Any]:
        """A planned switch loses nothing: every payment the old writer committed is in the new
        writer's ledger right after the switch (the old one is its replica now)."""
        mine = self.ledger_ids(old, processed_in=old)
        theirs = self.ledger_ids(new)
        return {"old_writer": old, "new_writer": new, "missing_in_new": sorted(mine - theirs)}


def reset(state: State, paths: Paths) -> None:
    """Empty ledger, tables and queues (the demo's reset), us-east-1 active, every rule on and
    every processor at its reserved concurrency: a drill starts from a normal day."""
    from ops.sandbox.demo import reset_sandbox
    from ops.sandbox.resources import REGIONAL_TEMPLATE, load_template

    reserved = str(
        load_template(REGIONAL_TEMPLATE)["Parameters"]["ProcessorReservedConcurrency"]["Default"]
    )
    reset_sandbox(state, paths)
    for role, region in state.regions.items():
        lifecycle.client(state, "events", region).enable_rule(
            Name=names.event_rule(role, state.env), EventBusName=names.event_bus(state.env)
        )
        lifecycle.client(state, "lambda", region).put_function_concurrency(
            FunctionName=names.processor_function(role, state.env),
            ReservedConcurrentExecutions=int(reserved),
        )


def run(paths: Paths, out: Any, *, seed: int | None, payments: int, rate: float, speedup: float,
        report_path: Path | None = None) -> int:  # fmt: skip
    plan = (
        Plan.seeded(seed, payments, rate, speedup)
        if seed is not None
        else Plan.fixed(payments, rate, speedup)
    )
    drill = Drill(paths, plan, out)
    started = time.monotonic()
    drill.prepare()
    out(
        f"drill: {plan.payments} payments at {plan.rate:g}/s, "
        + (f"seed {plan.seed}" if plan.seed is not None else "the fixed plan")
        + f"; Route 53 and Lambda retry clocks {plan.speedup:g}x faster than real time"
    )
    drill.start_harness()
    try:
        drill.run()
    finally:
        drill.stop_harness()
    document = accounting.report(drill, asdict(plan), time.monotonic() - started)
    target = report_path or paths.root / "drill-report.json"
    target.write_text(json.dumps(document, indent=2, default=str) + "\n")
    for line in accounting.render(document):
        out(line)
    out(f"drill: report written to {lifecycle.relative(target)}")
    return 0 if document["passed"] else 1


def loop(paths: Paths, out: Any, *, runs: int, first_seed: int, payments: int, rate: float,
         speedup: float) -> int:  # fmt: skip
    """Seeded drills one after another (seeds first_seed ...), stopping at the first failure;
    each report kept as .sandbox/drill/loop/seed-N.json. Says how long each took."""
    folder = paths.root / "drill" / "loop"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    started = time.monotonic()
    results = []
    for seed in range(first_seed, first_seed + runs):
        began = time.monotonic()
        report = folder / f"seed-{seed}.json"
        code = run(
            paths, lambda _line: None, seed=seed, payments=payments, rate=rate,
            speedup=speedup, report_path=report,
        )  # fmt: skip
        document = json.loads(report.read_text())
        failover = document["scenarios"]["failover"]
        results.append((seed, code, time.monotonic() - began))
        out(
            f"drill-loop: seed {seed}: {'PASSED' if code == 0 else 'FAILED'} in "
            f"{time.monotonic() - began:.0f}s; {document['sent_total']} payments, lost "
            f"{sum(s['lost'] for s in document['scenarios'].values())}, duplicated "
            f"{sum(s['duplicated'] for s in document['scenarios'].values())}, promotion "
            f"{failover.get('timeline', {}).get('promotion')}, exposure "
            f"{failover.get('exposure', {}).get('commits_not_replicated_at_kill')} "
            f"({lifecycle.relative(report)})"
        )
        if code != 0:
            break
    passed = sum(1 for _, code, _ in results if code == 0)
    out(
        f"drill-loop: {passed} of {len(results)} passed in a row "
        f"(seeds {first_seed}-{first_seed + len(results) - 1}) in "
        f"{time.monotonic() - started:.0f}s"
    )
    return 0 if passed == runs else 1


def _health_cache_seconds() -> float:
    """HealthFunction's answer cache as template.yaml deploys it."""
    template = resources.load_template(resources.REGIONAL_TEMPLATE)
    health = template["Resources"]["HealthFunction"]["Properties"]
    return float(health["Environment"]["Variables"]["HEALTH_CACHE_SECONDS"])
