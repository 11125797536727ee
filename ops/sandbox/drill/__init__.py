"""The DR drill (`make drill`): the real `drctl` against the two-region sandbox under a steady
stream of payments. ops/sandbox/drill/run.py drives it; the other modules are the AWS behaviour
the sandbox adds for it (EventBridge global endpoint and Lambda async delivery, global-table and
bucket replication, Route 53 health checks). Harness only: src/ never imports it."""
