"""The slow-I/O pool and retry settings: defaults, flags, environment, and a clear refusal of nonsense."""

from __future__ import annotations

import argparse

import pytest

from modeldeploy.settings import add_arguments, from_arguments


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_and_flags() -> None:
    settings = from_arguments(parse())
    assert (settings.io_workers, settings.io_per_deployment, settings.io_per_namespace) == (32, 2, 4)
    assert (settings.retry_base_seconds, settings.retry_max_seconds) == (1.0, 120.0)
    settings = from_arguments(parse("--io-workers=8", "--io-per-namespace=2", "--retry-max=30"))
    assert (settings.io_workers, settings.io_per_namespace, settings.retry_max_seconds) == (8, 2, 30.0)


def test_environment_values_are_checked_like_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELDEPLOY_IO_PER_DEPLOYMENT", "3")
    assert from_arguments(parse()).io_per_deployment == 3
    monkeypatch.setenv("MODELDEPLOY_IO_PER_DEPLOYMENT", "0")
    with pytest.raises(SystemExit):
        parse()


@pytest.mark.parametrize("argv", [["--io-workers=0"], ["--io-per-deployment=-1"], ["--retry-base=0"]])
def test_nonsense_is_refused_naming_the_flag(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse(*argv)
    assert argv[0].split("=")[0] in capsys.readouterr().err
