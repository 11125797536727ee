"""The sandbox's AWS endpoint (AWS_ENDPOINT_URL): moto behind a small HTTP front that adds what
moto lacks and the DR procedures call (ops/sandbox/front/server.py)."""
