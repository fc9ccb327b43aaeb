"""`get --watch`: refreshes in place on a terminal, appends on a pipe, and Ctrl-C exits 0."""

from __future__ import annotations

import io
from typing import Any

import pytest

from modeldeploy.cli import plugin
from modeldeploy.cli.main import main

OBJECT = {"metadata": {"name": "fraud", "namespace": "risk"}, "status": {"phase": "Stable"}}


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def cluster_stub(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    sleeps: list[float] = []
    monkeypatch.setattr(plugin, "_connect", lambda args: None)
    monkeypatch.setattr(plugin, "_fetch", lambda conn, name: OBJECT)
    monkeypatch.setattr(plugin, "_events", lambda conn, name: [])
    monkeypatch.setattr(plugin, "_sizes", lambda conn, name: {})

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(plugin.time, "sleep", sleep)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return sleeps


def test_on_a_terminal_each_refresh_clears_the_screen_and_ctrl_c_exits_zero(
    cluster_stub: list[float], monkeypatch: pytest.MonkeyPatch
) -> None:
    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    assert main(["get", "fraud", "--watch", "--interval", "1"]) == 0
    text: str = screen.getvalue()
    assert text.count(plugin.CLEAR_SCREEN) == 2 and text.startswith(plugin.CLEAR_SCREEN)
    assert "\x1b[32mStable\x1b[0m" in text  # colour on a terminal
    assert cluster_stub == [1, 1]


def test_on_a_pipe_refreshes_are_appended_without_escape_codes(
    cluster_stub: list[float], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["get", "fraud", "--watch", "--watch-count", "2", "--interval", "0"]) == 0
    out = capsys.readouterr().out
    assert out.count("Name:       fraud") == 2 and "\x1b" not in out


def test_no_color_turns_colour_off_but_still_refreshes_in_place(
    cluster_stub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    screen = Terminal()
    monkeypatch.setattr("sys.stdout", screen)
    assert main(["get", "fraud", "--watch", "--interval", "1"]) == 0
    assert screen.getvalue().replace(plugin.CLEAR_SCREEN, "").count("\x1b[") == 0
