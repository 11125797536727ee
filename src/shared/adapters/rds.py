"""The Aurora global cluster as RDS describes it in this region (the `rds` interface endpoint):
its status and members. Read only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.errors import DeadlineExceeded, MonitoringUnavailable


@dataclass(frozen=True)
class GlobalMember:
    region: str
    cluster: str
    writer: bool
    # SynchronizationStatus of a secondary: "connected", "pending-resync"; "" when not given.
    synchronization: str = ""

    @property
    def replicating(self) -> bool:
        return self.writer or self.synchronization in ("", "connected")


@dataclass(frozen=True)
class GlobalClusterState:
    status: str
    members: tuple[GlobalMember, ...]

    def member(self, region: str) -> GlobalMember | None:
        return next((m for m in self.members if m.region == region), None)


def _member(raw: dict[str, Any]) -> GlobalMember:
    arn = str(raw.get("DBClusterArn", ""))  # arn:aws:rds:<region>:<account>:cluster:<name>
    parts = arn.split(":")
    return GlobalMember(
        region=parts[3] if len(parts) > 3 else "",
        cluster=parts[-1],
        writer=bool(raw.get("IsWriter")),
        synchronization=str(raw.get("SynchronizationStatus", "")),
    )


class RdsGlobalCluster:
    def __init__(self, client: Any, identifier: str) -> None:
        self._client = client
        self._identifier = identifier

    def describe(self) -> GlobalClusterState | None:
        """None when there is no such global cluster (detached, deleted, never made)."""
        try:
            found = self._client.describe_global_clusters(
                GlobalClusterIdentifier=self._identifier
            ).get("GlobalClusters", [])
        except DeadlineExceeded:
            raise
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "unknown")
            if code == "GlobalClusterNotFoundFault":
                return None
            raise MonitoringUnavailable(f"DescribeGlobalClusters answered {code}") from exc
        except BotoCoreError as exc:
            raise MonitoringUnavailable(
                f"DescribeGlobalClusters failed: {type(exc).__name__}"
            ) from exc
        if not found:
            return None
        cluster = found[0]
        return GlobalClusterState(
            status=str(cluster.get("Status", "")),
            members=tuple(_member(m) for m in cluster.get("GlobalClusterMembers", [])),
        )
