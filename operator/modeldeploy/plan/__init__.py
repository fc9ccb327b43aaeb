"""The planner: pure functions from (spec, status, observed, verdicts, now) to a Plan.

No clock reads, no I/O, no kopf, no Kubernetes client, no HTTP: every rollout
rule lives here so that it can be tested exhaustively and fast. The layering
contract in .importlinter keeps it that way.
"""
