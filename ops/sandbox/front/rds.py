"""Aurora Global Database, served from the sandbox's two MariaDB servers.

moto keeps the regional clusters (DescribeDBClusters, snapshots, deletion) but its global
clusters cannot fail over or switch over, do not know which member writes, and ignore a
cross-region detach. This module keeps the global cluster itself (rds.json, next to
state.json) and does to the servers (ops/sandbox/replication.py) what Aurora does to the
clusters:

    SwitchoverGlobalCluster   the writer fenced, the target waits until it has every commit,
                              is promoted, and the old writer replicates from it (RPO 0);
                              refused when the writer's region or server does not answer
    FailoverGlobalCluster     AllowDataLoss: the target promoted with what it has applied; the
                              old writer stays a member, to be resynchronised when its region
                              returns (its stale data kept as a snapshot first, as Aurora's
                              rds:unplanned-global-failover-* snapshot). Can be told to refuse
                              (faults), so detach-and-promote is exercised
    RemoveFromGlobalCluster   a secondary detached becomes a standalone writer (its server is
                              promoted); the global writer endpoint keeps leading to the old writer
    CreateGlobalCluster       from a cluster in any region (moto: us-east-1 only)
    CreateDBCluster + GlobalClusterIdentifier   the region's server rebuilt as a replica
    DeleteDBCluster + FinalDBSnapshotIdentifier the server dumped to .sandbox/snapshots/, stopped

The global writer endpoint (one host name for both regions' functions, as in AWS) is the
writer forwarder (writer_endpoint.py), which follows `writer_region()`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ops.sandbox import lifecycle
from ops.sandbox.front import query_xml
from ops.sandbox.replication import Topology
from ops.sandbox.state import Paths, State
from shared import names

ACCOUNT_ID = "123456789012"
ENGINE = "aurora-mysql"
ENGINE_VERSION = "8.0.mysql_aurora.3.10.0"
CATCH_UP_SECONDS = 60.0
_MODEL = query_xml.service_model("rds")


def rds_state_path(paths: Paths) -> Path:
    return paths.rds


def snapshot_dir(paths: Paths) -> Path:
    return paths.snapshots


def global_endpoint(identifier: str) -> str:
    """The global writer endpoint's host name (AWS: <id>.global-<random>.global.rds...)."""
    return f"{identifier}.global-sandbox.global.rds.amazonaws.com"


def cluster_arn(region: str, identifier: str) -> str:
    return f"arn:aws:rds:{region}:{ACCOUNT_ID}:cluster:{identifier}"


def initial_state(env: str, regions: dict[str, str]) -> dict[str, Any]:
    """What `up` provisions: the global cluster, the primary's cluster writing, the secondary's
    replicating (the servers are already in that shape)."""
    identifier = names.global_cluster(env)
    return {
        "global_clusters": {
            identifier: {
                "identifier": identifier,
                "engine": ENGINE,
                "engine_version": ENGINE_VERSION,
                "deletion_protection": True,
                "status": "available",
                "members": [
                    {
                        "region": region,
                        "identifier": names.cluster(role, env),
                        "writer": role == "primary",
                        "resync": False,
                    }
                    for role, region in regions.items()
                ],
            }
        },
        "faults": {},
        "events": [],
    }


class RdsFault(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/xml"})


def _param(params: dict[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise RdsFault("InvalidParameterValue", f"{name} is required")
    return value


def _arn_parts(text: str, region: str) -> tuple[str, str]:
    """(region, identifier) from a cluster ARN or a bare identifier (then `region`)."""
    if text.startswith("arn:"):
        parts = text.split(":")
        return parts[3], parts[-1]
    return region, text


class GlobalDatabase:
    """The global clusters (rds.json) and the servers behind them. One lock: RDS calls are rare
    and each must see the result of the one before."""

    def __init__(self, paths: Paths, *, on_writer_change: Callable[[], None] = lambda: None):
        self.paths = paths
        self._lock = threading.RLock()
        self._on_writer_change = on_writer_change
        self._dead: set[str] = set()

    # -- state ----------------------------------------------------------------------------------

    def _load(self) -> dict[str, Any]:
        try:
            return dict(json.loads(rds_state_path(self.paths).read_text()))
        except FileNotFoundError:
            return {"global_clusters": {}, "faults": {}, "events": []}

    def _save(self, data: dict[str, Any]) -> None:
        path = rds_state_path(self.paths)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=2) + "\n")
        tmp.replace(path)

    def _event(self, data: dict[str, Any], kind: str, **facts: Any) -> None:
        """What RDS would list in DescribeEvents; the drill reads them for its timeline."""
        at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        data.setdefault("events", []).append({"at": at, "event": kind, **facts})

    def _topology(self) -> Topology:
        state = State.load(self.paths)
        if state is None:
            raise RdsFault("InternalFailure", "no sandbox state", 500)
        return lifecycle.ledger(state)

    def set_dead(self, region: str, dead: bool) -> None:
        with self._lock:
            (self._dead.add if dead else self._dead.discard)(region)

    def set_faults(self, faults: dict[str, Any]) -> None:
        with self._lock:
            data = self._load()
            data["faults"] = dict(faults)
            self._save(data)

    # -- what the rest of the front asks -----------------------------------------------------------

    def writer_region(self) -> str | None:
        """The region whose server the global writer endpoint leads to (the first global
        cluster's writer member: the sandbox has one per environment)."""
        for cluster in self._load()["global_clusters"].values():
            writer = next((m for m in cluster["members"] if m["writer"]), None)
            return str(writer["region"]) if writer else None
        return None

    def is_global_endpoint(self, host: str) -> bool:
        return any(global_endpoint(i) == host for i in self._load()["global_clusters"])

    # -- the API ---------------------------------------------------------------------------------

    def handle(self, region: str, action: str, params: dict[str, str]) -> Reply:
        operations: dict[str, Callable[[str, dict[str, str]], dict[str, Any]]] = {
            "DescribeGlobalClusters": self._describe,
            "CreateGlobalCluster": self._create_global,
            "DeleteGlobalCluster": self._delete_global,
            "ModifyGlobalCluster": self._modify_global,
            "RemoveFromGlobalCluster": self._remove,
            "FailoverGlobalCluster": self._failover,
            "SwitchoverGlobalCluster": self._switchover,
        }
        try:
            with self._lock:
                result = operations[action](region, params)
        except RdsFault as fault:
            return Reply(fault.status, query_xml.error(fault.code, fault.message))
        return Reply(200, query_xml.response(_MODEL, action, result))

    HANDLED = frozenset(
        {
            "DescribeGlobalClusters",
            "CreateGlobalCluster",
            "DeleteGlobalCluster",
            "ModifyGlobalCluster",
            "RemoveFromGlobalCluster",
            "FailoverGlobalCluster",
            "SwitchoverGlobalCluster",
        }
    )

    def _shape(self, cluster: dict[str, Any]) -> dict[str, Any]:
        return {
            "GlobalClusterIdentifier": cluster["identifier"],
            "GlobalClusterResourceId": f"cluster-sandbox-{cluster['identifier']}",
            "GlobalClusterArn": f"arn:aws:rds::{ACCOUNT_ID}:global-cluster:{cluster['identifier']}",
            "Status": cluster["status"],
            "Engine": cluster["engine"],
            "EngineVersion": cluster["engine_version"],
            "StorageEncrypted": True,
            "DeletionProtection": cluster["deletion_protection"],
            "Endpoint": global_endpoint(cluster["identifier"]),
            "GlobalClusterMembers": [
                {
                    "DBClusterArn": cluster_arn(m["region"], m["identifier"]),
                    "IsWriter": m["writer"],
                    "Readers": [
                        cluster_arn(o["region"], o["identifier"])
                        for o in cluster["members"]
                        if m["writer"] and not o["writer"]
                    ],
                    "SynchronizationStatus": "pending-resync" if m["resync"] else "connected",
                }
                for m in cluster["members"]
            ],
        }

    def _cluster(self, data: dict[str, Any], identifier: str) -> dict[str, Any]:
        found = data["global_clusters"].get(identifier)
        if found is None:
            raise RdsFault("GlobalClusterNotFoundFault", f"{identifier} not found", 404)
        return dict(found)

    def _member(self, cluster: dict[str, Any], arn: str, region: str) -> dict[str, Any]:
        member_region, identifier = _arn_parts(arn, region)
        for member in cluster["members"]:
            if (member["region"], member["identifier"]) == (member_region, identifier):
                return dict(member)
        raise RdsFault(
            "DBClusterNotFoundFault",
            f"{identifier} ({member_region}) is not a member of {cluster['identifier']}",
            404,
        )

    def _describe(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        data = self._load()
        wanted = params.get("GlobalClusterIdentifier")
        if wanted:
            return {"GlobalClusters": [self._shape(self._cluster(data, wanted))]}
        return {"GlobalClusters": [self._shape(c) for c in data["global_clusters"].values()]}

    def _store(self, data: dict[str, Any], cluster: dict[str, Any], members: list[Any]) -> None:
        cluster["members"] = members
        data["global_clusters"][cluster["identifier"]] = cluster
        self._save(data)

    def _create_global(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        data = self._load()
        identifier = _param(params, "GlobalClusterIdentifier")
        if identifier in data["global_clusters"]:
            raise RdsFault("GlobalClusterAlreadyExistsFault", f"{identifier} already exists")
        members = []
        source = params.get("SourceDBClusterIdentifier")
        if source:
            source_region, source_id = _arn_parts(source, region)
            members.append(
                {"region": source_region, "identifier": source_id, "writer": True, "resync": False}
            )
        cluster = {
            "identifier": identifier,
            "engine": params.get("Engine", ENGINE),
            "engine_version": params.get("EngineVersion", ENGINE_VERSION),
            "deletion_protection": params.get("DeletionProtection") == "true",
            "status": "available",
        }
        self._event(data, "global cluster created", cluster=identifier, source=source)
        self._store(data, cluster, members)
        self._on_writer_change()
        return {"GlobalCluster": self._shape({**cluster, "members": members})}

    def _delete_global(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        data = self._load()
        cluster = self._cluster(data, _param(params, "GlobalClusterIdentifier"))
        if cluster["deletion_protection"]:
            raise RdsFault("InvalidParameterCombination", "deletion protection is on")
        if cluster["members"]:
            raise RdsFault("InvalidGlobalClusterStateFault", "the global cluster has members")
        del data["global_clusters"][cluster["identifier"]]
        self._event(data, "global cluster deleted", cluster=cluster["identifier"])
        self._save(data)
        self._on_writer_change()
        return {"GlobalCluster": self._shape({**cluster, "status": "deleting"})}

    def _modify_global(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        data = self._load()
        cluster = self._cluster(data, _param(params, "GlobalClusterIdentifier"))
        if "DeletionProtection" in params:
            cluster["deletion_protection"] = params["DeletionProtection"] == "true"
        self._store(data, cluster, cluster["members"])
        return {"GlobalCluster": self._shape(cluster)}

    def _remove(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        """A detached secondary becomes a standalone writer; the writer can leave last only."""
        data = self._load()
        cluster = self._cluster(data, _param(params, "GlobalClusterIdentifier"))
        member = self._member(cluster, _param(params, "DbClusterIdentifier"), region)
        others = [m for m in cluster["members"] if m["region"] != member["region"]]
        if member["writer"] and others:
            raise RdsFault(
                "InvalidGlobalClusterStateFault", "remove the secondary clusters before the writer"
            )
        if not member["writer"]:
            lifecycle.change_ledger(self.paths, lambda ledger: ledger.promote(member["region"]))
        self._event(
            data,
            "cluster detached",
            cluster=member["identifier"],
            region=member["region"],
            promoted=not member["writer"],
        )
        self._store(data, cluster, others)
        return {"GlobalCluster": self._shape({**cluster, "members": others})}

    def _writer_and_target(
        self, cluster: dict[str, Any], params: dict[str, str], region: str
    ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        target = self._member(cluster, _param(params, "TargetDbClusterIdentifier"), region)
        writer = next((m for m in cluster["members"] if m["writer"]), None)
        return writer, target

    def _failover(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        data = self._load()
        refusal = data.get("faults", {}).get("refuse_failover")
        if refusal:
            raise RdsFault(str(refusal), "the sandbox was told to refuse FailoverGlobalCluster")
        if params.get("AllowDataLoss") != "true":
            return self._switchover(region, params)
        cluster = self._cluster(data, _param(params, "GlobalClusterIdentifier"))
        writer, target = self._writer_and_target(cluster, params, region)
        if target["writer"]:
            return {"GlobalCluster": self._shape(cluster)}
        promoted_at: dict[str, Any] = {}

        def promote(ledger: Topology) -> None:
            promoted_at["executed_gtid"] = _executed(ledger, target["region"])
            ledger.promote(target["region"])

        lifecycle.change_ledger(self.paths, promote)
        for member in cluster["members"]:
            member["writer"] = member["region"] == target["region"]
            if writer is not None and member["region"] == writer["region"]:
                member["resync"] = True  # Aurora re-adds it when its region is back
        self._event(
            data,
            "global failover (allow data loss)",
            cluster=target["identifier"],
            region=target["region"],
            old_writer=writer["region"] if writer else None,
            **promoted_at,
        )
        self._store(data, cluster, cluster["members"])
        self._on_writer_change()
        if writer is not None and writer["region"] not in self._dead:
            self._resync(writer["region"])  # the old writer answers: no need to wait for it
        return {"GlobalCluster": self._shape(cluster)}

    def _switchover(self, region: str, params: dict[str, str]) -> dict[str, Any]:
        data = self._load()
        cluster = self._cluster(data, _param(params, "GlobalClusterIdentifier"))
        writer, target = self._writer_and_target(cluster, params, region)
        if target["writer"]:
            return {"GlobalCluster": self._shape(cluster)}
        if writer is None or writer["region"] in self._dead:
            raise RdsFault(
                "InvalidGlobalClusterStateFault",
                "the primary cluster is not available: a switchover needs it (use failover)",
            )
        facts: dict[str, Any] = {}

        def hand_over(ledger: Topology) -> None:
            ledger.fence(writer["region"])  # no new commits while the target catches up
            ledger.release(target["region"])  # a held replica applies what it received
            facts["transactions_behind_at_fence"] = ledger.status(
                target["region"]
            ).transactions_behind
            status = ledger.wait_caught_up(target["region"], timeout=CATCH_UP_SECONDS)
            facts["transactions_behind_at_promotion"] = status.transactions_behind
            facts["executed_gtid"] = status.executed_gtid
            ledger.promote(target["region"])
            ledger.demote(writer["region"])

        started = time.monotonic()
        lifecycle.change_ledger(self.paths, hand_over)
        for member in cluster["members"]:
            member["writer"] = member["region"] == target["region"]
        self._event(
            data,
            "global switchover",
            cluster=target["identifier"],
            region=target["region"],
            old_writer=writer["region"],
            seconds=round(time.monotonic() - started, 3),
            **facts,
        )
        self._store(data, cluster, cluster["members"])
        self._on_writer_change()
        return {"GlobalCluster": self._shape(cluster)}

    # -- regional clusters: what moto does, plus the servers ----------------------------------

    def joined(self, region: str, identifier: str, global_identifier: str) -> None:
        """CreateDBCluster into a global cluster succeeded at moto: the region's server becomes
        a fresh replica of the writer (Aurora copies the storage)."""
        with self._lock:
            data = self._load()
            cluster = self._cluster(data, global_identifier)
            lifecycle.change_ledger(self.paths, lambda ledger: ledger.rebuild(region))
            members = [m for m in cluster["members"] if m["region"] != region]
            members.append(
                {"region": region, "identifier": identifier, "writer": False, "resync": False}
            )
            self._event(data, "secondary cluster added", cluster=identifier, region=region)
            self._store(data, cluster, members)

    def deleting(self, region: str, identifier: str, final_snapshot: str | None) -> str | None:
        """DeleteDBCluster: the final snapshot is a dump of the region's server; it stops."""
        with self._lock:
            path = None
            if final_snapshot:
                path = snapshot_dir(self.paths) / f"{final_snapshot}.sql"
                lifecycle.change_ledger(self.paths, lambda ledger: ledger.snapshot(region, path))
            lifecycle.change_ledger(self.paths, lambda ledger: ledger.servers[region].stop())
            data = self._load()
            self._event(
                data,
                "cluster deleted",
                cluster=identifier,
                region=region,
                final_snapshot=str(path) if path else None,
            )
            self._save(data)
            return str(path) if path else None

    # -- a region that comes back ----------------------------------------------------------------

    def region_returned(self, region: str) -> dict[str, Any]:
        """Aurora's side of a region that answers again: a member waiting for resync (after a
        managed failover) keeps its stale data as a snapshot and becomes a replica of the
        writer; a detached cluster's old writer (case B) stays as it was, stale and writable,
        until drctl failback deletes it."""
        with self._lock:
            self._dead.discard(region)
            done: dict[str, Any] = {"region": region, "resynced": False}
            data = self._load()
            for cluster in data["global_clusters"].values():
                for member in cluster["members"]:
                    if member["region"] == region and member["resync"]:
                        done.update(self._resync(region))
            return done

    def _resync(self, region: str) -> dict[str, Any]:
        data = self._load()
        stamp = datetime.now(UTC).strftime("%Y-%m-%d-%H-%M-%S")
        snapshot = None
        for cluster in data["global_clusters"].values():
            for member in cluster["members"]:
                if member["region"] != region:
                    continue
                name = f"rds-unplanned-global-failover-{member['identifier']}-{stamp}"
                path = snapshot_dir(self.paths) / f"{name}.sql"

                def resync(ledger: Topology, path: Path = path) -> None:
                    server = ledger.servers[region]
                    pid = server.pid
                    if pid is not None and server.is_ours(pid):  # it came back with its data
                        ledger.snapshot(region, path)
                    ledger.rebuild(region)

                lifecycle.change_ledger(self.paths, resync)
                member["resync"] = False
                snapshot = str(path) if path.exists() else None
                self._event(
                    data,
                    "secondary resynchronised",
                    cluster=member["identifier"],
                    region=region,
                    stale_snapshot=snapshot,
                )
        self._save(data)
        return {"resynced": True, "stale_snapshot": snapshot}


def _executed(ledger: Topology, region: str) -> str | None:
    try:
        return ledger.status(region).executed_gtid
    except Exception:  # noqa: BLE001 - a fact for the event log only
        return None
