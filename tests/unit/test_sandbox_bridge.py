"""The sandbox is reachable from containers on this machine and from nowhere else: SANDBOX_BIND
accepts loopback, nothing, or a local Docker bridge's address; every other address is refused
before anything starts."""

from __future__ import annotations

import pytest

from ops.sandbox import bridge


@pytest.mark.parametrize(
    "address",
    ["0.0.0.0", "::", "10.20.0.5", "192.168.1.10", "172.16.0.1", "8.8.8.8", "localhost-ish"],
)
def test_an_address_beyond_the_machine_is_refused(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bridge, "docker_bridges", lambda: {"172.17.0.1": "docker0"})

    with pytest.raises(bridge.BridgeRefused):
        bridge.bind_address(address)


def test_a_local_docker_bridge_address_is_accepted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge, "docker_bridges", lambda: {"172.17.0.1": "docker0"})

    assert bridge.bind_address("172.17.0.1") == "172.17.0.1"


@pytest.mark.parametrize("setting", ["off", "none", "loopback", "127.0.0.1", "::1"])
def test_loopback_or_off_adds_no_listener(setting: str) -> None:
    assert bridge.bind_address(setting) is None


def test_auto_forwards_only_when_docker0_exists_and_socat_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bridge, "interface_address", lambda name: None)
    assert bridge.bind_address("auto") is None
    assert bridge.bind_address("") is None

    monkeypatch.setattr(bridge, "interface_address", lambda name: "172.17.0.1")
    monkeypatch.setattr(bridge.shutil, "which", lambda name: None)
    assert bridge.bind_address("auto") is None  # no socat: loopback only, no failure

    monkeypatch.setattr(bridge.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert bridge.bind_address("auto") == "172.17.0.1"


def test_docker_is_required_when_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bridge, "interface_address", lambda name: None)

    with pytest.raises(bridge.BridgeRefused, match="no docker0"):
        bridge.bind_address("docker")


def test_the_loopback_interface_is_no_docker_bridge() -> None:
    assert "127.0.0.1" not in bridge.docker_bridges()
    assert bridge.interface_address("lo") in ("127.0.0.1", None)  # None off Linux
