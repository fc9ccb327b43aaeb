"""Every expression in the Grafana dashboard names only metrics and labels the operator exports.

charts/modeldeploy/dashboards/metrics.yaml lists the operator's metrics (name,
type, labels). The dashboard's PromQL is tokenized here and every metric name,
label matcher and grouping label it uses is looked up in that list; counters
must be read through rate() or increase(). promtool (shipped with the pinned
Prometheus) parses every expression to catch syntax errors.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from helm_chart import CHART

from modeldeploy_dev.binaries import find_existing

DASHBOARD = CHART / "dashboards" / "modeldeploy.json"
METRICS: dict[str, dict[str, Any]] = yaml.safe_load((CHART / "dashboards" / "metrics.yaml").read_text())
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__range": "6h", "$__interval": "1m"}

FUNCTIONS = {
    "abs", "absent", "avg_over_time", "ceil", "changes", "clamp_max", "clamp_min", "count_over_time",
    "delta", "deriv", "floor", "histogram_quantile", "idelta", "increase", "irate", "label_replace",
    "max_over_time", "min_over_time", "rate", "resets", "round", "scalar", "sort", "sort_desc",
    "sum_over_time", "time", "timestamp", "vector", "label_values",
}  # fmt: skip
AGGREGATORS = {"sum", "min", "max", "avg", "count", "stddev", "stdvar", "topk", "bottomk", "quantile"}
KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
}
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
RATES = {"rate", "irate", "increase"}
TOKEN = re.compile(
    r"""(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
      |(?P<range>\[[^\]]*\])
      |(?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
      |(?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
      |(?P<op>=~|!~|!=|==|>=|<=|[-+*/%^=<>(){},])
      |(?P<space>\s+)""",
    re.VERBOSE,
)


@dataclass
class Uses:
    """What one expression refers to."""

    metrics: list[str] = field(default_factory=list)
    matchers: list[tuple[str, str]] = field(default_factory=list)  # (metric, label)
    grouping: set[str] = field(default_factory=set)
    unrated_counters: list[str] = field(default_factory=list)


def tokens(expr: str) -> list[tuple[str, str]]:
    found, position = [], 0
    while position < len(expr):
        match = TOKEN.match(expr, position)
        assert match, f"cannot tokenize {expr[position:]!r} in {expr!r}"
        if match.lastgroup != "space":
            found.append((match.lastgroup or "", match.group()))
        position = match.end()
    return found


def uses(expr: str) -> Uses:
    result, toks = Uses(), tokens(expr)
    metric: str | None = None
    in_braces = in_grouping = False
    for i, (kind, text) in enumerate(toks):
        following = toks[i + 1][1] if i + 1 < len(toks) else ""
        if in_braces:
            if text == "}":
                in_braces = False
            elif kind == "ident" and following in {"=", "!=", "=~", "!~"}:
                result.matchers.append((metric or "", text))
        elif in_grouping:
            if text == ")":
                in_grouping = False
            elif kind == "ident":
                result.grouping.add(text)
        elif text == "{":
            in_braces = True
        elif kind == "ident" and text in GROUPING and following == "(":
            in_grouping = True
        elif kind == "ident" and text in FUNCTIONS | AGGREGATORS and following in {"(", "by", "without"}:
            continue
        elif kind == "ident" and text not in KEYWORDS:
            metric = text
            result.metrics.append(text)
            called_by = toks[i - 2][1] if i >= 2 and toks[i - 1][1] == "(" else ""
            if text.endswith("_total") and called_by not in RATES:
                result.unrated_counters.append(text)
    return result


def family(metric: str) -> tuple[str, set[str]]:
    """The metric family a series name belongs to, and the labels its series carry."""
    if metric in METRICS:
        return metric, set(METRICS[metric]["labels"])
    for suffix in ("_bucket", "_sum", "_count"):
        base = metric.removesuffix(suffix)
        if base != metric and METRICS.get(base, {}).get("type") == "histogram":
            return base, set(METRICS[base]["labels"]) | ({"le"} if suffix == "_bucket" else set())
    raise AssertionError(f"{metric} is not an operator metric listed in dashboards/metrics.yaml")


def panels(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in node.get("panels", []):
        yield panel
        yield from panels(panel)


def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) for every query in the dashboard: panel targets and variable queries."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = [
        (f"panel {panel['title']!r} {target['refId']}", target["expr"])
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
    ]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = re.fullmatch(r"label_values\((?:(.*),\s*)?(\w+)\)", variable["query"]["query"])
            assert match and match.group(1), f"variable {variable['name']}: use label_values(metric, label)"
            found.append((f"variable {variable['name']}", match.group(1)))
            found.append(
                (f"variable {variable['name']} label", f"count by ({match.group(2)}) ({match.group(1)})")
            )
    return found


EXPRESSIONS = expressions()
IDS = [where for where, _ in EXPRESSIONS]


def test_the_dashboard_has_queries_and_every_listed_metric_is_used() -> None:
    used = {family(m)[0] for _, expr in EXPRESSIONS for m in uses(expr).metrics}
    assert used == set(METRICS)


def test_the_metric_list_is_well_formed() -> None:
    for name, metric in METRICS.items():
        assert name.startswith("modeldeploy_"), name
        assert metric["type"] in {"gauge", "counter", "histogram"}, name
        assert name.endswith("_total") == (metric["type"] == "counter"), name
        assert metric["help"] and isinstance(metric["labels"], list), name


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=IDS)
def test_every_metric_in_the_expression_is_an_operator_metric(where: str, expr: str) -> None:
    found = uses(expr)
    assert found.metrics, f"{where}: no metric in {expr!r}"
    for metric in found.metrics:
        family(metric)


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=IDS)
def test_every_label_the_expression_uses_exists_on_its_metrics(where: str, expr: str) -> None:
    found = uses(expr)
    for metric, label in found.matchers:
        assert label in family(metric)[1], f"{where}: {metric} has no label {label!r}"
    available = set().union(*(family(m)[1] for m in found.metrics))
    assert found.grouping <= available, f"{where}: grouping by {found.grouping - available} in {expr!r}"


@pytest.mark.parametrize(("where", "expr"), EXPRESSIONS, ids=IDS)
def test_counters_are_read_through_rate_or_increase(where: str, expr: str) -> None:
    assert uses(expr).unrated_counters == [], f"{where}: {expr!r}"


def test_the_tokenizer_sees_metrics_labels_and_grouping() -> None:
    found = uses(
        'sum by (namespace, le) (rate(modeldeploy_x_bucket{name=~"$name", phase!="a,b"}[$__rate_interval]))'
        " / on(namespace) group_left modeldeploy_y_total"
    )
    assert found.metrics == ["modeldeploy_x_bucket", "modeldeploy_y_total"]
    assert found.matchers == [("modeldeploy_x_bucket", "name"), ("modeldeploy_x_bucket", "phase")]
    assert found.grouping == {"namespace", "le"}
    assert found.unrated_counters == ["modeldeploy_y_total"]


def test_promtool_parses_every_expression(tmp_path: Path) -> None:
    promtool = find_existing("promtool")
    if promtool is None:
        pytest.skip("promtool comes with the pinned Prometheus: run `make binaries`")
    rules = []
    for i, (_, expr) in enumerate(EXPRESSIONS):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        rules.append({"record": f"dashboard:expression_{i}", "expr": re.sub(r"\$\w+", ".*", expr)})
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = subprocess.run(
        [str(promtool), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_dashboard_is_self_contained_for_the_sidecar() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "modeldeploy" and "__inputs" not in dashboard
    datasource = next(v for v in dashboard["templating"]["list"] if v["name"] == "datasource")
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    for panel in panels(dashboard):
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids))
