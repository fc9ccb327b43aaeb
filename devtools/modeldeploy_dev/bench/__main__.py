"""`make bench`: how fast, how cheap. Writes bench/results/<date>-<machine>.{json,md} and prints the table.

python -m modeldeploy_dev.bench [--n 100 300 1000] [--idle 300] [--skip-canaries]
python -m modeldeploy_dev.bench --peers [--n 100 300 1000] [--controllers modeldeploy argo-rollouts flagger]

--peers runs the same work for modeldeploy, Argo Rollouts and Flagger side by side (N=20 unless
--n is given; the peers are built into the cache on first use) and writes
bench/results/<date>-<machine>-peers.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from modeldeploy_dev.bench import canaries, convergence, peers, scale
from modeldeploy_dev.binaries import REPO_ROOT
from modeldeploy_dev.cluster import LocalCluster

TARGETS = {
    "convergence ratio at N=1000": "<= 1.5",
    "writes while idle": "0",
    "peak RSS at N=1000": "< 250 MB",
    "rollback after the failing verdict": "<= 1 s",
    "canary step overhead": "< 1 s",
}


def machine() -> str:
    memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30)
    return f"{platform.machine()}-{os.cpu_count()}cpu-{memory_gib}gib"


def say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def table(results: dict[str, Any]) -> str:
    lines = [
        f"Machine: {results['machine']} ({results['cpu']}), Python {results['python']}, {results['date']}",
        "",
        "| N | baseline (s) | operator (s) | ratio | reads/MD converging | writes/MD converging "
        f"| reads/MD idle {results['idle_seconds']:.0f}s | writes idle | peak RSS (MB) | CPU (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["convergence"]:
        n = row["n"]
        idle_reads = f"{row['idle_reads'] / n:.3f}" if row["idle"] else "-"
        idle_writes = str(row["idle_writes"]) if row["idle"] else "-"
        lines.append(
            f"| {n} | {row['baseline_s']:.1f} | {row['operator_s']:.1f} | {row['ratio']:.2f} "
            f"| {row['reads'] / n:.2f} | {row['writes'] / n:.2f} | {idle_reads} | {idle_writes} "
            f"| {row['peak_rss_mb']} | {row['cpu_s']} |"
        )
    if results.get("canaries"):
        c = results["canaries"]
        lines += [
            "",
            f"20 canaries, 5 s pauses, analysis every {canaries.INTERVAL} s:",
            "",
            "| step overhead beyond pause, median / max (s) "
            "| breach visible -> all traffic on stable, median / max (s) "
            "| failing measurement -> route, max (s, 1 s resolution) | Prometheus queries / min / canary |",
            "|---|---|---|---|",
            f"| {c['step_overhead_median']} / {c['step_overhead_max']} "
            f"| {c['reaction_median']} / {c['reaction_max']} "
            f"| {c['verdict_to_route_max']} | {c['queries_per_minute_per_canary']} |",
        ]
    lines += ["", "Targets: " + "; ".join(f"{k} {v}" for k, v in TARGETS.items())]
    return "\n".join(lines)


def install_crd(cluster: LocalCluster) -> None:
    """The ModelDeployment CRD, established."""
    cluster.kubectl("apply", "--server-side", "-f", str(REPO_ROOT / "crds" / "modeldeployment.yaml"))
    cluster.wait_established("crd/modeldeployments.modeldeploy.io")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, nargs="+", default=None)
    parser.add_argument("--peers", action="store_true", help="modeldeploy vs Argo Rollouts vs Flagger")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="one operator holding N = 300, 1000, 3000 (or --n): latency and memory against N (not in CI)",
    )
    parser.add_argument(
        "--controllers", nargs="+", choices=sorted(peers.CONTROLLERS), default=list(peers.CONTROLLERS)
    )
    parser.add_argument(
        "--idle", type=float, default=300.0, help="idle seconds measured after convergence at the largest N"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="the operator's --workers (default 8; --scale: 16)"
    )
    parser.add_argument("--skip-canaries", action="store_true")
    parser.add_argument(
        "--skip-convergence", action="store_true", help="keep today's convergence rows, run the canaries only"
    )
    parser.add_argument(
        "--modeldeploy-args", default="", help="--peers: more flags for `modeldeploy run`, named in its row"
    )
    parser.add_argument("--append", action="store_true", help="--peers: keep today's other rows")
    parser.add_argument(
        "--controller-manager-qps",
        type=int,
        default=None,
        help="--peers, --scale: kube-controller-manager's client QPS (burst twice it); default its own 20",
    )
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "bench" / "results")
    args = parser.parse_args()
    if args.peers:
        peers.ModelDeploy.extra_args = tuple(args.modeldeploy_args.split())
        return run_peers(args)
    if args.scale:
        return run_scale(args)
    args.n = args.n or [100, 300]

    state = Path(tempfile.mkdtemp(prefix="modeldeploy-bench-"))
    cluster = LocalCluster(state / "cluster", nodes=5, audit=True)
    say("starting the local control plane")
    cluster.start(log=say)
    install_crd(cluster)
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "idle_seconds": args.idle,
        "convergence": [],
    }
    stem = args.out / f"{results['date']}-{results['machine']}"
    if args.skip_convergence and stem.with_suffix(".json").exists():
        earlier = json.loads(stem.with_suffix(".json").read_text())
        results["convergence"] = earlier["convergence"]
        results["idle_seconds"] = earlier["idle_seconds"]
    try:
        for n in [] if args.skip_convergence else args.n:
            say(f"N={n}: baseline (the same objects applied directly, {convergence.THREADS} threads)")
            base = convergence.baseline(cluster, n, f"baseline-{n}")
            say(f"N={n}: baseline {base:.1f}s; now the operator")
            convergence.delete_namespace(cluster, f"baseline-{n}", say)  # no deletion loads the next run
            idle = args.idle if n == max(args.n) else 0.0
            run = convergence.operator_run(cluster, n, f"operator-{n}", idle, state, args.workers or 8, say)
            say(f"N={n}: operator {run.seconds:.1f}s, ratio {run.seconds / base:.2f}")
            results["convergence"].append(
                {
                    "n": n,
                    "baseline_s": round(base, 1),
                    "operator_s": round(run.seconds, 1),
                    "ratio": round(run.seconds / base, 2),
                    "reads": run.convergence_reads,
                    "writes": run.convergence_writes,
                    "idle": idle,
                    "idle_reads": run.idle_reads,
                    "idle_writes": run.idle_writes,
                    "peak_rss_mb": run.footprint.peak_rss_mb,
                    "cpu_s": run.footprint.cpu_seconds,
                }
            )
        if not args.skip_canaries:
            say("20 canaries: step overhead, rollback reaction, Prometheus load")
            results["canaries"] = asdict(canaries.run(cluster, "canaries", state))
    finally:
        cluster.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    rendered = table(results)
    stem.with_suffix(".md").write_text(rendered + "\n")
    print(rendered)
    say(f"written {stem}.json and {stem}.md")
    return 0


def run_peers(args: argparse.Namespace) -> int:
    sizes: list[int] = args.n or [20]
    idle = 30.0 if args.idle == 300.0 else args.idle
    from modeldeploy_dev.binaries import ensure_peers

    say("finding or building the peers (Argo Rollouts, Flagger)")
    ensure_peers(log=say, only=args.controllers)
    state = Path(tempfile.mkdtemp(prefix="modeldeploy-bench-peers-"))
    cluster = LocalCluster(
        state / "cluster",
        nodes=convergence.kwok_nodes(peers.PEAK_PODS_PER_APP * max(sizes)),
        audit=True,
        controller_manager_qps=args.controller_manager_qps,
    )
    peers.CONTROLLER_MANAGER_QPS = args.controller_manager_qps
    say("starting the local control plane")
    date, name = time.strftime("%Y-%m-%d"), machine()
    stem = args.out / f"{date}-{name}-peers"
    rows: list[dict[str, Any]] = []
    if args.append and stem.with_suffix(".json").exists():
        flags = {
            c: peers.row_flags(c, args.modeldeploy_args.split(), args.controller_manager_qps)
            for c in args.controllers
        }
        rerun = {(c, n, flags[c]) for c in args.controllers for n in sizes}
        earlier = json.loads(stem.with_suffix(".json").read_text())["rows"]
        rows = [row for row in earlier if (row["controller"], row["n"], row.get("flags", "")) not in rerun]
    try:
        cluster.start(log=say)
        install_crd(cluster)
        peers.install_peer_crds(cluster, args.controllers)
        for n in sizes:
            say(f"N={n}: baseline (load average {peers.load_average()})")
            base = peers.baseline(cluster, n, f"baseline-{n}")
            say(f"N={n}: baseline {base:.1f}s")
            convergence.delete_namespace(cluster, f"baseline-{n}", say)
            for controller in args.controllers:
                say(f"N={n}: {controller} (load average {peers.load_average()})")
                rows.append(peers.to_json(peers.run(cluster, controller, n, base, idle, state, say)))
                args.out.mkdir(parents=True, exist_ok=True)
                stem.with_suffix(".json").write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    finally:
        cluster.stop()
    header = (
        f"Machine: {name} ({platform.processor() or platform.machine()}), Python "
        f"{platform.python_version()}, {date}; idle window {idle:.0f} s; load average (1/5/15 min) "
        "at the end of each row: the machine may be shared."
    )
    rendered = header + "\n\n" + peers.table(rows)
    stem.with_suffix(".md").write_text(rendered + "\n")
    print(rendered)
    say(f"written {stem}.json and {stem}.md")
    return 0


def run_scale(args: argparse.Namespace) -> int:
    steps: list[int] = args.n or [300, 1000, 3000]
    workers = args.workers or 16
    state = Path(tempfile.mkdtemp(prefix="modeldeploy-bench-scale-"))
    nodes = convergence.kwok_nodes(max(steps) + scale.PROBES)  # the probes run 2 replicas
    cluster = LocalCluster(
        state / "cluster", nodes=nodes, audit=True, controller_manager_qps=args.controller_manager_qps
    )
    date, name = time.strftime("%Y-%m-%d"), machine()
    stem = args.out / f"{date}-{name}-scale"
    say("starting the local control plane")
    try:
        cluster.start(log=say)
        install_crd(cluster)
        points = [asdict(p) for p in scale.run(cluster, steps, state, say, workers)]
    finally:
        cluster.stop()
    args.out.mkdir(parents=True, exist_ok=True)
    stem.with_suffix(".json").write_text(
        json.dumps(
            {
                "workers": workers,
                "controller_manager_qps": args.controller_manager_qps or 20,
                "points": points,
            },
            indent=2,
        )
        + "\n"
    )
    rendered = (
        f"Machine: {name} ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}, {date}; one operator (--workers {workers}) holding "
        f"N ModelDeployments of 1 replica, N raised in steps; {scale.PROBES} single changes at rest "
        f"per step; kube-controller-manager at {args.controller_manager_qps or 20} QPS.\n\n"
        + scale.table(points)
    )
    stem.with_suffix(".md").write_text(rendered + "\n")
    print(rendered)
    say(f"written {stem}.json and {stem}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
