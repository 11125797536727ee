"""Make sure a MariaDB server binary is installed (stdlib only: runs before any virtualenv).

As root it installs Debian's mariadb-server; otherwise it says exactly what to run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CANDIDATES = ("mariadbd", "/usr/sbin/mariadbd", "mysqld", "/usr/sbin/mysqld")


def server_binary() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name) or (
            name if os.path.isabs(name) and os.access(name, os.X_OK) else None
        )
        if found:
            return found
    return None


def main() -> int:
    if server_binary():
        return 0
    command = ["apt-get", "install", "-y", "-q", "mariadb-server"]
    if os.geteuid() != 0:
        print(
            "MariaDB server not found. Install it with:\n"
            "  sudo apt-get update && sudo apt-get install -y mariadb-server",
            file=sys.stderr,
        )
        return 1
    print("MariaDB server not found: installing Debian's mariadb-server", file=sys.stderr)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
    if not server_binary():
        print("mariadb-server installed but no server binary found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
