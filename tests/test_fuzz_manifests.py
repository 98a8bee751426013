"""Fuzzing the manifest input (issue 13), fast profile: hypothesis mutates valid fleets (tests/fuzz_manifests.py:
random bytes, structure, aliases and merge keys, tags, unicode, huge values, duplicate keys, CSV rows) and each
case runs validate, lint and (device-only fleets) plan in-process: no traceback, no internal error, no run over
5 s, every error diagnostic at a file and line. The same cases at length: benchmarks/fuzz_manifests.py.
"""

from __future__ import annotations

import shutil

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from tests import fuzz_manifests as fz

pytestmark = pytest.mark.filterwarnings("ignore::Warning")

WORK = fz.workdir()
BASES, ENV = fz.make_bases(WORK / "bases")


def teardown_module() -> None:
    shutil.rmtree(WORK, ignore_errors=True)


def test_the_bases_are_valid_fleets():
    """Mutations start from fleets that load without an error (the device-only one plans against its dumps)."""
    from engine.manifest.fleet import load_fleet

    for base in BASES:
        fleet = load_fleet(base.fleet, ENV)
        assert not fleet.diagnostics.errors, (base.name, [d.render() for d in fleet.diagnostics.errors])
        out = fz.check_case(base, base.files[0], [], WORK / "case", ENV)
        assert not out.failures and out.errors == 0, (base.name, out)


@settings(
    max_examples=150,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
@given(fz.cases(BASES))
def test_mutated_fleets_fail_cleanly_and_located(case):
    base, target, changes = case
    out = fz.check_case(base, target, changes, WORK / "case", ENV)
    assert not out.failures, fz.case_text(base, target, changes) + "\n" + "\n".join(out.failures)


@pytest.mark.parametrize("snippet", fz.SNIPPETS[:14])
def test_every_hostile_snippet_in_every_base(snippet):
    """The hand-written hostile snippets (alias bomb, deep nesting, recursive alias, tags, huge range, ...) as
    a document of their own in each base: the cases the random draw may miss."""
    for base in BASES:
        target = base.files[0] if base.files[0].endswith(".yaml") else base.files[-1]
        out = fz.check_case(base, target, [("snippet", "document", snippet)], WORK / "case", ENV)
        assert not out.failures, (base.name, out.failures)
