"""python -m ops.sandbox.front: the sandbox's AWS endpoint (started by `make sandbox`)."""

from ops.sandbox.front.server import main

main()
