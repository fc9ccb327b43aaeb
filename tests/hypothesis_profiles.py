"""Hypothesis profiles: how many examples each property test runs, and how.

- ``ci`` (``make unit``, CI): derandomized, so every run tries the same
  examples and a green build stays green until the code or the test changes;
  no shrinking, so a failure is reported at once (with ``print_blob``, paste
  the ``@reproduce_failure`` line into the test and run it under ``dev`` to
  get the minimal example); no example database.
- ``dev`` (the default of a plain ``pytest``): random examples with the same
  budget, shrunk to a minimal failing case, remembered in ``.hypothesis/``.
- ``fuzz`` (``make fuzz``): 20 times the budget, shrinking, no deadline.
- ``mutation`` (``make mutation``): ci with a fifth of the budget, since the
  tests run once per mutant.

Pick one with ``--hypothesis-profile=NAME`` or ``HYPOTHESIS_PROFILE=NAME``.
A test that needs its own budget asks :func:`examples` for it, so the profile
still scales it.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

BASE = 100  # the max_examples of ci and dev; a test's own budget is relative to it

settings.register_profile(
    "ci",
    max_examples=BASE,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.target),
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("mutation", settings.get_profile("ci"), max_examples=BASE // 5)
settings.register_profile("dev", max_examples=BASE)
settings.register_profile(
    "fuzz",
    max_examples=20 * BASE,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def load_default() -> None:
    """The profile named by HYPOTHESIS_PROFILE, else dev (``--hypothesis-profile`` overrides both)."""
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def examples(budget: int) -> int:
    """A test's example budget under the loaded profile: ``budget`` under ci and dev, scaled under fuzz."""
    return max(1, budget * settings.default.max_examples // BASE)
