"""The kubectl plugin's commands: `kubectl modeldeploy list|get|promote|abort|retry|undo|pause|resume|...`.

The same code runs as ``modeldeploy COMMAND`` and, through the
``kubectl-modeldeploy`` console script, as ``kubectl modeldeploy COMMAND``.

Reads (``list``, ``get``, ``history``, ``card``) print tables or, with ``-o
json|yaml``, the data. Manual decisions (``promote``, ``abort``, ``retry``,
``undo``) are requests merged into the **status** subresource
(``status.action``), never into ``spec``, so a GitOps tool has nothing to
revert; the operator carries them out and clears the request. ``pause`` and
``resume`` change ``spec.paused``, a decision that belongs in Git, so they only
print the YAML to commit unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from modeldeploy.api import API_VERSION, KIND, ActionType, format_time
from modeldeploy.cli import view
from modeldeploy.cli.connection import CliError, Connection, connect, explain
from modeldeploy.cli.lint import lint_files
from modeldeploy.cli.output import OUTPUT_FORMATS, dump
from modeldeploy.cli.tables import card_data, card_table, history_table, list_table
from modeldeploy.kube.client import ApiError
from modeldeploy.kube.kinds import DEPLOYMENT, EVENT, HORIZONTAL_POD_AUTOSCALER, MODEL_DEPLOYMENT
from modeldeploy.plan.revisions import LABEL_NAME

Handler = Callable[[argparse.Namespace], int]
CLEAR_SCREEN = "\x1b[H\x1b[2J"  # cursor home, erase the screen: the view refreshes in place


def register(commands: Any) -> None:
    """Add the plugin's subcommands to the ``modeldeploy`` parser."""
    cluster = argparse.ArgumentParser(add_help=False)
    cluster.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    cluster.add_argument("--context", help="kubeconfig context (default: the current context)")
    cluster.add_argument(
        "-n", "--namespace", help="namespace (default: the context's namespace, else default)"
    )
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-o", "--output", choices=OUTPUT_FORMATS, help="print the data as json or yaml")

    def add(name: str, help: str, handler: Handler, *parents: argparse.ArgumentParser) -> Any:
        parser = commands.add_parser(name, help=help, parents=list(parents))
        parser.set_defaults(handler=_guarded(handler))
        return parser

    listing = add("list", "ModelDeployments in all namespaces (or -n's)", _list, cluster, output)
    listing.add_argument("-A", "--all-namespaces", action="store_true", help="all namespaces (the default)")

    get = add("get", "the live view of one ModelDeployment", _get, cluster, output)
    get.add_argument("name")
    get.add_argument("-w", "--watch", action="store_true", help="refresh in place until Ctrl-C")
    get.add_argument("--interval", type=float, default=1.5, help="seconds between refreshes (default 1.5)")
    get.add_argument("--watch-count", type=int, default=0, help=argparse.SUPPRESS)  # tests: stop after N

    promote = add("promote", "leave the current step or pause (--full: skip to stable)", _promote, cluster)
    promote.add_argument("name")
    promote.add_argument("--full", action="store_true", help="skip the remaining steps and analysis")
    add("abort", "roll the candidate back and stop", _abort, cluster).add_argument("name")
    add("retry", "start the rolled-back or aborted candidate again", _retry, cluster).add_argument("name")
    undo = add("undo", "return to an earlier revision", _undo, cluster)
    undo.add_argument("name")
    undo.add_argument("--to-revision", help="the revision to return to (default: the previous stable one)")
    for verb, paused in (("pause", True), ("resume", False)):
        command = add(
            verb, f"{verb} rollouts (prints the GitOps way; --force patches spec)", _pauser(paused), cluster
        )
        command.add_argument("name")
        command.add_argument("--force", action="store_true", help="patch spec.paused here, not in Git")

    add("history", "revisions, versions, outcomes and reasons", _history, cluster, output).add_argument(
        "name"
    )
    add("card", "the model cards of stable and candidate side by side", _card, cluster, output).add_argument(
        "name"
    )
    lint = add("lint", "validate ModelDeployment manifests offline", _lint, output)
    lint.add_argument("files", nargs="+", metavar="FILE")


def _guarded(handler: Handler) -> Handler:
    """Failures become one line on stderr and exit code 1, never a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except CliError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        except Exception as error:  # ApiError, connection errors: worded by explain()
            print(f"error: {explain(error)}", file=sys.stderr)
            return 1

    return run


def _now() -> datetime:
    return datetime.now(UTC)


def _connect(args: argparse.Namespace) -> Connection:
    return connect(args.kubeconfig, args.context, args.namespace)


def _fetch(conn: Connection, name: str) -> dict[str, Any]:
    what = f"modeldeployment {conn.namespace}/{name}"
    try:
        obj = conn.client.get(MODEL_DEPLOYMENT, conn.namespace, name)
    except Exception as error:
        raise explain(error, conn.client, what) from None
    if obj is None:
        raise CliError(f"{what} not found")
    return obj


def _events(conn: Connection, name: str) -> list[dict[str, Any]]:
    """The object's Events; none when they cannot be read (the view still shows the rest)."""
    selector = f"involvedObject.kind={KIND},involvedObject.name={name}"
    try:
        result = conn.client.request(
            "list", "GET", EVENT.path(conn.namespace), params={"fieldSelector": selector}
        )
    except ApiError:
        return []
    return list((result or {}).get("items", []))


def _sizes(conn: Connection, name: str) -> dict[str, view.RevisionSize]:
    """Each revision's replicas from its Deployment and HPA; none when they cannot be read."""
    selector = f"{LABEL_NAME}={name}"
    try:
        deployments = conn.client.list_objects(DEPLOYMENT, conn.namespace, selector)
        try:
            autoscalers = conn.client.list_objects(HORIZONTAL_POD_AUTOSCALER, conn.namespace, selector)
        except ApiError:
            autoscalers = []  # no right to read HPAs: the counts still show
    except ApiError:
        return {}
    return view.sizes_of(deployments, autoscalers)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# --- reads -----------------------------------------------------------------------------


def _list(args: argparse.Namespace) -> int:
    conn = _connect(args)
    namespace = None if args.all_namespaces or not args.namespace else conn.namespace
    try:
        objects = conn.client.list_objects(MODEL_DEPLOYMENT, namespace)
    except Exception as error:
        raise explain(error, conn.client) from None
    if args.output:
        _write(dump({"apiVersion": "v1", "kind": "List", "items": objects}, args.output))
    elif not objects:
        where = f"namespace {namespace}" if namespace else "any namespace"
        print(f"no ModelDeployments in {where}", file=sys.stderr)
    else:
        _write(list_table(objects, _now()))
    return 0


def _get(args: argparse.Namespace) -> int:
    conn = _connect(args)
    terminal = sys.stdout.isatty()
    color = terminal and "NO_COLOR" not in os.environ  # https://no-color.org
    refreshes = 0
    try:
        while True:
            obj = _fetch(conn, args.name)
            if args.output:
                text = dump(obj, args.output)
            else:
                width = shutil.get_terminal_size((100, 40)).columns
                sizes = _sizes(conn, args.name)
                text = view.render(obj, _events(conn, args.name), _now(), width, color=color, sizes=sizes)
            if args.watch and terminal:
                text = CLEAR_SCREEN + text
            elif args.watch and refreshes:
                text = "\n" + text
            _write(text)
            refreshes += 1
            if not args.watch or (args.watch_count and refreshes >= args.watch_count):
                return 0
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return 0


def _history(args: argparse.Namespace) -> int:
    obj = _fetch(_connect(args), args.name)
    if args.output:
        _write(dump((obj.get("status") or {}).get("history") or [], args.output))
    else:
        _write(history_table(obj))
    return 0


def _card(args: argparse.Namespace) -> int:
    obj = _fetch(_connect(args), args.name)
    _write(dump(card_data(obj), args.output) if args.output else card_table(obj))
    return 0


def _lint(args: argparse.Namespace) -> int:
    report = lint_files(args.files)
    if args.output:
        findings = [
            {"file": f.file, "document": f.document, "path": f.path, "message": f.message}
            for f in report.findings
        ]
        _write(dump(findings, args.output))
    else:
        for finding in report.findings:
            print(finding)
        if not report.findings:
            print(f"{report.checked} ModelDeployment manifest(s) valid", file=sys.stderr)
    return 1 if report.findings else 0


# --- manual actions (status.action) -------------------------------------------------------


def _request(args: argparse.Namespace, action: ActionType, to_revision: str | None = None) -> int:
    conn = _connect(args)
    obj = _fetch(conn, args.name)
    status = obj.get("status") or {}
    request: dict[str, Any] = {"type": action.value, "requestedAt": format_time(_now())}
    if to_revision:
        request["toRevision"] = to_revision
    what = f"modeldeployment {conn.namespace}/{args.name}"
    try:
        conn.client.merge_patch(
            MODEL_DEPLOYMENT, conn.namespace, args.name, {"status": {"action": request}}, subresource="status"
        )
    except Exception as error:
        raise explain(error, conn.client, what) from None
    target = f" to {to_revision}" if to_revision else ""
    print(
        f"{action.value}{target} requested for {what}; "
        "the operator will carry it out and clear status.action."
    )
    note = _note(action, status, to_revision)
    if note:
        print(f"note: {note}")
    return 0


def _note(action: ActionType, status: dict[str, Any], to_revision: str | None) -> str | None:
    """A warning when the request will likely be ignored, so nobody waits for nothing."""
    candidate = status.get("candidate") or {}
    phase = status.get("phase", "unknown")
    if action in (ActionType.PROMOTE, ActionType.PROMOTE_FULL, ActionType.ABORT) and not candidate:
        return f"there is no candidate now (phase {phase}); nothing to {action.value.lower()}"
    if action == ActionType.RETRY and phase != "RolledBack":
        return f"phase is {phase}, not RolledBack; retry only restarts a rejected candidate"
    kept = ((status.get("operatorState") or {}).get("revisions")) or {}
    if action == ActionType.UNDO and to_revision and kept and to_revision not in kept:
        return (
            f"{to_revision} is not a kept revision ({', '.join(sorted(kept))}); the operator will refuse it"
        )
    return None


def _promote(args: argparse.Namespace) -> int:
    return _request(args, ActionType.PROMOTE_FULL if args.full else ActionType.PROMOTE)


def _abort(args: argparse.Namespace) -> int:
    return _request(args, ActionType.ABORT)


def _retry(args: argparse.Namespace) -> int:
    return _request(args, ActionType.RETRY)


def _undo(args: argparse.Namespace) -> int:
    return _request(args, ActionType.UNDO, args.to_revision)


# --- pause / resume: a decision that belongs in Git ---------------------------------------


def pause_advice(namespace: str, name: str, paused: bool) -> str:
    """What to commit instead of patching: the exact YAML, and how to force it when there is no Git."""
    verb = "pause" if paused else "resume"
    value = "true" if paused else "false"
    return (
        f"Pausing belongs in Git: a GitOps tool (Argo CD, Flux) would revert a change made here.\n"
        f"Set spec.paused in the manifest of modeldeployment {namespace}/{name} and let it sync:\n"
        f"\n"
        f"  apiVersion: {API_VERSION}\n"
        f"  kind: {KIND}\n"
        f"  metadata:\n"
        f"    name: {name}\n"
        f"    namespace: {namespace}\n"
        f"  spec:\n"
        f"    paused: {value}\n"
        f"\n"
        f"Nothing was changed. Without GitOps, `kubectl modeldeploy {verb} {name} -n {namespace} --force`\n"
        f"patches spec.paused directly.\n"
    )


def _pauser(paused: bool) -> Handler:
    def handle(args: argparse.Namespace) -> int:
        conn = _connect(args)
        obj = _fetch(conn, args.name)
        if not args.force:
            _write(pause_advice(conn.namespace, args.name, paused))
            current = bool((obj.get("spec") or {}).get("paused", False))
            print(f"(spec.paused is {str(current).lower()} now)")
            return 0
        what = f"modeldeployment {conn.namespace}/{args.name}"
        try:
            conn.client.merge_patch(MODEL_DEPLOYMENT, conn.namespace, args.name, {"spec": {"paused": paused}})
        except Exception as error:
            raise explain(error, conn.client, what) from None
        print(f"{what}: spec.paused set to {str(paused).lower()} (a GitOps tool syncing it may revert this)")
        return 0

    return handle
