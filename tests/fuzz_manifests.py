"""The manifest fuzzer shared by tests/test_fuzz_manifests.py (fast profile, CI) and benchmarks/fuzz_manifests.py
(long profile, figures): hypothesis strategies that mutate valid fleets, and the check every case must pass.

A case is a base fleet, one of its files and one to three mutations of that file:
- bytes: random bytes inserted, a range deleted, bits flipped; tokens of YAML syntax, anchors, aliases, merge keys,
  tags (`!!python/object`, unknown ones), unicode (BOM, RTL marks, surrogates, NUL and other control characters,
  invalid UTF-8), document markers;
- structure: the file parsed, one node replaced by a wrongly typed, deeply nested, huge or hostile value
  (`{file: {}}`, a reference where a scalar belongs, a 100,000-item list, a long string), and dumped again;
- snippets appended: an alias bomb, deep nesting, duplicate keys, merges, tags, a huge generator range;
- CSV rows (ThingSet base): the same byte mutations, on the CSV.

Bases: the example fleet (fleet/, without dumps), a device-only fleet made from fleet/devices/ (its cloud
references replaced by literal host names) with a copy of the example dumps, a ThingSet fleet with a CSV, and a
small AWS fleet using anchors and merge keys. Every case runs `validate` (engine.manifest.fleet.load_fleet, and
each diagnostic rendered), `lint` (engine.lint.lint and its three renderers) and, for the device-only base,
`plan` through the CLI runner (no cloud: devices plan against their dumps). A case fails on a traceback, an
`internal error`, a run over 5 s, or an error diagnostic without a file and line.
"""

from __future__ import annotations

import itertools
import os
import re
import resource
import shutil
import signal
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
FLEET = ROOT / "fleet"
MAX_SECONDS = 5.0
HANG_SECONDS = 60  # a case still running after this is aborted (and fails as a timeout)
ENDPOINT = "a1b2c3d4e5f6g7-ats.iot.eu-west-2.amazonaws.com"
ENV = {
    "FLEETCTL_NOW": "2026-11-21T10:00:00Z",
    "FLEETCTL_GIT_COMMIT": "0" * 40,
    "FLEETCTL_ACTOR": "fuzz",
    "FLEETCTL_WIFI_PSK": "correct horse battery",
    "FLEETCTL_SPRINGPARK_DA1275B0_ADMIN_PASSWORD": "paris-admin-01",
    "FLEETCTL_RATE_LIMIT": "off",
    "AWS_EC2_METADATA_DISABLED": "true",
}

THINGSET = """\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: aws-eu}
spec:
  aws: {region: eu-west-2}
---
apiVersion: aws.fleetctl.io/v1
kind: ThingGroup
metadata: {name: esp32-fleet, target: aws-eu}
spec: {description: all ESP32 devkits}
---
apiVersion: fleetctl.io/v1
kind: ThingSet
metadata: {name: esp32-fleet}
spec:
  csv: {file: devices.csv, id: mac}
  template:
    - apiVersion: aws.fleetctl.io/v1
      kind: Thing
      metadata: {name: "esp32-${mac|compact}", target: aws-eu, labels: {site: "${site}"}}
      spec:
        attributes: {mac: "${mac}", row: "${index}"}
        groups: [esp32-fleet]
"""
CSV = "mac,site\n" + "".join(f"24:0A:C4:00:00:{i:02X},site-{i % 3}\n" for i in range(12))

SMALL = """\
apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: aws-eu}
spec:
  aws: {region: eu-west-2}
---
apiVersion: aws.fleetctl.io/v1
kind: Policy
metadata: {name: sensor-policy, target: aws-eu}
spec:
  document:
    Version: "2012-10-17"
    Statement:
      - &connect {Effect: Allow, Action: "iot:Connect", Resource: "arn:aws:iot:eu-west-2:123456789012:client/${iot:Connection.Thing.ThingName}"}
      - <<: *connect
        Action: "iot:Publish"
---
apiVersion: aws.fleetctl.io/v1
kind: ThingType
metadata: {name: sensor, target: aws-eu}
spec: {description: sensors}
---
apiVersion: aws.fleetctl.io/v1
kind: Thing
metadata: {name: sensor-01, target: aws-eu, labels: &labels {site: paris, floor: "2"}}
spec:
  thingType: sensor
  attributes: {<<: *labels, model: s1}
---
apiVersion: aws.fleetctl.io/v1
kind: Thing
metadata: {name: sensor-02, target: aws-eu, labels: &site {site: lyon}}
spec:
  thingType: sensor
  attributes: {<<: *site, model: s2}
"""


# ---------------------------------------------------------------------------------------------- bases
@dataclass
class Base:
    name: str
    fleet: Path  # the fleet folder to copy for each case
    files: list[str]  # files a case may mutate (relative to the fleet)
    dumps: Path | None = None  # device dumps: `plan` runs (device-only fleets need no cloud)


KEYS_TARGET = """apiVersion: fleetctl.io/v1
kind: Target
metadata: {name: keys}
spec:      # only the file allowance for the device keys under ~/.fleetctl/keys (issue 13.5)
  azure: {hub: {hostName: h.azure-devices.net, connectionString: {env: UNSET_HUB_CONNECTION_STRING}}}
  optional: true
  files: {allow: ["~/.fleetctl/keys"]}
"""


def _device_fleet(dest: Path) -> None:
    shutil.copytree(FLEET / "devices", dest)
    (dest / "keys-allowance.yaml").write_text(KEYS_TARGET, encoding="utf-8")
    for path in dest.glob("*.yaml"):
        path.write_text(
            path.read_text(encoding="utf-8").replace("{awsIotEndpoint: aws-eu}", ENDPOINT), encoding="utf-8"
        )


def make_bases(work: Path) -> tuple[list[Base], dict[str, str]]:
    """The base fleets under `work`, and the environment cases run in (a HOME holding the devices' keys)."""
    from engine.sandbox.certs import issue

    bases: list[Base] = []
    example = work / "example"
    shutil.copytree(FLEET, example, ignore=shutil.ignore_patterns("out", ".fleetctl", "dumps"))
    bases.append(Base("example", example, sorted(str(p.relative_to(example)) for p in example.rglob("*.yaml"))))
    devices = work / "devices" / "fleet"
    _device_fleet(devices)
    shutil.copytree(FLEET / "dumps", work / "devices" / "dumps")
    bases.append(Base("devices", devices, sorted(p.name for p in devices.glob("*.yaml")), work / "devices" / "dumps"))
    thingset = work / "thingset"
    thingset.mkdir()
    (thingset / "fleet.yaml").write_text(THINGSET)
    (thingset / "devices.csv").write_text(CSV)
    bases.append(Base("thingset", thingset, ["fleet.yaml", "devices.csv"]))
    small = work / "small"
    small.mkdir()
    (small / "fleet.yaml").write_text(SMALL)
    bases.append(Base("small", small, ["fleet.yaml"]))
    home = work / "home"
    keys = home / ".fleetctl" / "keys"
    keys.mkdir(parents=True)
    for name in ("nina-D4CA6E0A1B2C", "spwf-0080E1B73C21", "esp32-240AC45F129C"):
        (keys / f"{name}.key").write_text(issue(name).key_pem())
    return bases, {**ENV, "HOME": str(home)}


# ---------------------------------------------------------------------------------------------- mutations
TOKENS: list[bytes] = [
    s.encode("utf-8", "surrogatepass")
    for s in [
        " ",
        "\n",
        ":",
        ": ",
        "- ",
        "-",
        "[",
        "]",
        "{",
        "}",
        ",",
        "#",
        "'",
        '"',
        "|",
        ">",
        "?",
        "!",
        "%",
        "@",
        "`",
        "\n  ",
        "\n- ",
        "---\n",
        "...\n",
        "&a ",
        "*a",
        "&b ",
        "*b",
        "<<: *a\n",
        "<<: ",
        "~",
        "null",
        "true",
        "0x1F",
        "1e999",
        "-.inf",
        ".nan",
        "2026-13-45",
        "!!python/object:os.system ",
        "!!python/name:os.system ",
        "!custom ",
        "!!binary ",
        "!!set ",
        "!!str ",
        "!!int ",
        "!<tag:x> ",
        "!!map ",
        "%YAML 1.1\n",
        "%TAG ! tag:x,2000:\n",
        "\ufeff",
        "\u202e",
        "\u200f",
        "\u2028",
        "\x85",
        "\t",
        "\r",
        "\x00",
        "\x01",
        "\x1b",
        "\x7f",
        "\ufffe",
        "\ud800",
        "é",
        "😀",
        "${mac}",
        "${nope}",
        "${id|nope}",
        "$${x}",
        "{file: {}}",
        "{file: ../../../etc/passwd}",
        "{env: 123}",
        "{secretRef: []}",
        "{certificatePem: 5}",
        "{awsIotEndpoint: {}}",
        "{inline: 1}",
    ]
] + [b"\xff", b"\xfe\xff", b"\xc3", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x80"]

SNIPPETS: list[str] = [
    "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
    "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
    "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\n",
    "a: " + "[" * 5000 + "]" * 5000 + "\n",
    "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 150)) + "  " * 150 + "v: 1\n",
    "- " * 3000 + "x\n",
    "a: &x [*x]\n",
    "apiVersion: fleetctl.io/v1\nkind: Target\nkind: Target\nmetadata: {name: dup, name: dup2}\n",
    "apiVersion: fleetctl.io/v1\nkind: ThingSet\nmetadata: {name: big}\nspec:\n  range: {count: 100000000000}\n"
    "  template: [{apiVersion: aws.fleetctl.io/v1, kind: Thing, metadata: {name: 't-${id}', target: aws-eu}}]\n",
    "apiVersion: fleetctl.io/v1\nkind: ThingSet\nmetadata: {name: nested}\nspec:\n  range: {count: 2}\n"
    "  template: [{apiVersion: fleetctl.io/v1, kind: ThingSet, metadata: {name: 'n${id}'}}]\n",
    "apiVersion: !!python/object/apply:os.system [echo pwned]\nkind: Target\nmetadata: {name: x}\n",
    "base: &base {apiVersion: fleetctl.io/v1, kind: Target}\n---\n<<: *base\nmetadata: {name: merged}\n",
    'apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {name: "' + "x" * 100_000 + '", target: aws-eu}\n',
    "apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {name: t, target: aws-eu}\nspec: {attributes: {"
    + ", ".join(f"k{i}: v" for i in range(5000))
    + "}}\n",
    "apiVersion: device.fleetctl.io/v1\nkind: DeviceConfig\nmetadata: {name: refs}\nspec:\n  model: esp32-nvs\n"
    "  devices: {24-0A-C4-00-00-01: {values: {cert: {file: {}}, key: {env: [1]}, ca: {certificatePem: {}}}}}\n",
    "\ufeffapiVersion: fleetctl.io/v1\nkind: Target\nmetadata: {name: \u202eevil}\n",
    "[1, 2, 3]\n",
    "just a string\n",
    "42\n",
    "---\n---\n---\n",
    "{}\n",
    "? [a, b]\n: c\n",
]


def _structure_values() -> st.SearchStrategy[Any]:
    """Values a structural mutation puts in place of a node: wrong types, huge, deep, hostile references."""
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True),
        st.text(max_size=20),
        st.sampled_from(
            ["", "x" * 100_000, "../../etc/passwd", "a\x00b", "\u202e", "${nope}", "-----BEGIN CERTIFICATE-----\nMII\n"]
        ),
    )
    refs = st.sampled_from(
        [
            {"file": {}},
            {"file": []},
            {"file": 1},
            {"env": 5},
            {"env": "NOT_SET_ANYWHERE"},
            {"secretRef": None},
            {"certificatePem": {}},
            {"inline": 7},
            {"file": "nope.pem"},
            {"awsIotEndpoint": "nowhere"},
            {"azureHubHost": []},
            {"file": "", "env": "X"},
        ]
    )
    deep = st.integers(1, 200).map(lambda n: _nest(n))
    # huge for a manifest (a value 1,000 times the usual), not for the loader: the cost of a load is linear in
    # the nodes of the input, which the file size limit bounds (tests/test_loader_hardening.py measures it)
    huge = st.sampled_from([list(range(20_000)), {f"k{i}": i for i in range(5_000)}, ["x"] * 20_000])
    return st.one_of(
        leaf,
        refs,
        deep,
        huge,
        st.recursive(
            leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=8), c, max_size=4), max_leaves=10
        ),
    )


def _nest(n: int) -> Any:
    value: Any = "deep"
    for i in range(n):
        value = {"k": value} if i % 2 else [value]
    return value


@st.composite
def mutation(draw: st.DrawFn) -> tuple:
    kind = draw(
        st.sampled_from(
            [
                "insert",
                "insert",
                "token",
                "token",
                "token",
                "delete",
                "flip",
                "structure",
                "structure",
                "snippet",
                "duplicate_line",
            ]
        )
    )
    at = draw(st.floats(0, 1))
    if kind == "insert":
        return (kind, at, draw(st.binary(min_size=1, max_size=8)))
    if kind == "token":
        return (kind, at, draw(st.sampled_from(TOKENS)))
    if kind == "delete":
        return (kind, at, draw(st.integers(1, 40)))
    if kind == "flip":
        return (kind, at, draw(st.integers(1, 255)))
    if kind == "structure":
        return (kind, at, draw(_structure_values()))
    if kind == "snippet":
        return (kind, draw(st.sampled_from(["append", "prepend", "document"])), draw(st.sampled_from(SNIPPETS)))
    return (kind, at, None)


@st.composite
def cases(draw: st.DrawFn, bases: list[Base]) -> tuple[Base, str, list[tuple]]:
    base = draw(st.sampled_from(bases))
    target = draw(st.sampled_from(base.files))
    return base, target, draw(st.lists(mutation(), min_size=1, max_size=3))


def _walk(value: Any, path: tuple = (), seen: set[int] | None = None) -> Iterator[tuple]:
    """Paths of the nodes of a loaded document, each shared (aliased) node once, 100 levels at most."""
    seen = set() if seen is None else seen
    yield path
    if id(value) in seen or len(path) > 100:
        return
    if isinstance(value, dict):
        seen.add(id(value))
        for k, v in value.items():
            yield from _walk(v, path + (k,), seen)
    elif isinstance(value, list):
        seen.add(id(value))
        for i, v in enumerate(value):
            yield from _walk(v, path + (i,), seen)


def _replace(docs: list[Any], at: float, new: Any) -> list[Any]:
    paths = [(i, p) for i, doc in enumerate(docs) for p in itertools.islice(_walk(doc), 5000)]
    if not paths:
        return docs
    i, path = paths[min(int(at * len(paths)), len(paths) - 1)]
    if not path:
        docs[i] = new
        return docs
    parent = docs[i]
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = new
    return docs


def mutate(data: bytes, change: tuple) -> bytes:
    kind, at, arg = change
    pos = int(at * len(data)) if isinstance(at, float) else 0
    if kind in ("insert", "token"):
        return data[:pos] + arg + data[pos:]
    if kind == "delete":
        return data[:pos] + data[pos + arg :]
    if kind == "flip":
        if not data:
            return bytes([arg])
        pos = min(pos, len(data) - 1)
        return data[:pos] + bytes([data[pos] ^ arg]) + data[pos + 1 :]
    if kind == "snippet":
        snippet = arg.encode("utf-8")
        if at == "append":
            return data + b"\n" + snippet
        if at == "prepend":
            return snippet + data
        return data + b"\n---\n" + snippet
    if kind == "duplicate_line":
        lines = data.splitlines(keepends=True)
        if not lines:
            return data
        i = min(int(at * len(lines)), len(lines) - 1)
        return b"".join(lines[: i + 1] + lines[i:])
    if kind == "structure":
        try:
            docs = list(yaml.safe_load_all(data.decode("utf-8")))
        except Exception:  # noqa: BLE001 - an earlier mutation broke the text: leave it broken
            return data
        if not docs or all(d is None for d in docs):
            return data
        try:
            docs = _replace(docs, at, arg)
            return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True).encode("utf-8", "surrogatepass")
        except (RecursionError, yaml.YAMLError, TypeError, KeyError, IndexError):  # a recursive or odd document
            return data
    raise ValueError(kind)


# ---------------------------------------------------------------------------------------------- the check
@dataclass
class Outcome:
    seconds: dict[str, float] = field(default_factory=dict)  # command → wall seconds
    failures: list[str] = field(default_factory=list)
    errors: int = 0  # error diagnostics seen (all located)


@contextmanager
def _hang_guard(seconds: int) -> Iterator[None]:
    """Abort a run still going after `seconds` (SIGALRM; the main thread only, where pytest and the benchmark run)."""

    def fire(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s")

    if os.name != "posix" or signal.getsignal(signal.SIGALRM) not in (signal.SIG_DFL, None):
        yield
        return
    previous = signal.signal(signal.SIGALRM, fire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _located(d: Any) -> bool:
    return d.source is not None and bool(d.source.file) and d.source.line >= 1


def _unlocated_lines(output: str) -> list[str]:
    """Error lines of rendered diagnostics (`file:line:col: error: ...`) that carry no file:line."""
    bad = []
    for line in output.splitlines():
        if line.startswith(" ") or ("error: " not in line):
            continue
        if (
            line.startswith("error: ")
            or re.match(r"^\S.*?: error: ", line)
            and not re.match(r"^(?:\S+:\d+, template )?\S+:\d+:\d+: error: ", line)
        ):
            bad.append(line)
    return bad


def check_case(base: Base, target: str, changes: list[tuple], work: Path, env: dict[str, str]) -> Outcome:
    """Write the mutated fleet under `work`, run validate, lint (and plan) on it, and say what went wrong."""
    from engine.lint import lint
    from engine.lint.cli import RENDERERS as LINT_RENDERERS
    from engine.manifest.fleet import load_fleet
    from tests.conftest import run_cli

    fleet = work / "fleet"
    if fleet.exists():
        shutil.rmtree(fleet)
    shutil.copytree(base.fleet, fleet)
    data = (fleet / target).read_bytes()
    for change in changes:
        data = mutate(data, change)
    (fleet / target).write_bytes(data)
    out = Outcome()

    def timed(name: str, fn: Any) -> Any:
        started = time.perf_counter()
        try:
            with _hang_guard(HANG_SECONDS):
                return fn()
        except Exception as exc:  # noqa: BLE001 - the point: any exception is a finding
            out.failures.append(f"{name}: traceback\n" + "".join(traceback.format_exception(exc))[-3000:])
            return None
        finally:
            out.seconds[name] = seconds = time.perf_counter() - started
            if seconds > MAX_SECONDS:
                out.failures.append(f"{name}: {seconds:.1f} s (over {MAX_SECONDS:.0f} s)")

    loaded = timed("validate", lambda: load_fleet(fleet, env))
    if loaded is not None:
        for d in loaded.diagnostics.errors:
            d.render()
            out.errors += 1
            if not _located(d):
                out.failures.append(f"validate: error without file:line: {d.render()[:500]}")
    linted = timed("lint", lambda: _lint_all(lint, LINT_RENDERERS, fleet, env))
    if linted is not None:
        for d in linted.diagnostics:
            out.errors += 1
            if not _located(d):
                out.failures.append(f"lint: error without file:line: {d.render()[:500]}")
    if base.dumps is not None:
        journal = work / "journal.jsonl"
        res = timed(
            "plan",
            lambda: run_cli(
                "plan",
                str(fleet),
                "--dumps",
                str(base.dumps),
                "--journal",
                str(journal),
                env={**env, "FLEETCTL_DEVICE_STATE": str(work / "device-state.json")},
            ),
        )
        if res is not None:
            text = res.stdout + res.stderr
            if res.exit_code not in (0, 1, 2):
                out.failures.append(f"plan: exit code {res.exit_code}")
            if "internal error" in text or "Traceback" in text:
                out.failures.append(f"plan: {text[-3000:]}")
            out.failures.extend(f"plan: error without file:line: {line[:500]}" for line in _unlocated_lines(text))
    return out


def _lint_all(lint: Any, renderers: dict[str, Any], fleet: Path, env: dict[str, str]) -> Any:
    result = lint(fleet, env=env)
    for render in renderers.values():
        render(result)
    return result


def case_text(base: Base, target: str, changes: list[tuple]) -> str:
    """A case as a reproducible one-liner (values cut to 200 characters)."""
    shown = [tuple(repr(a)[:200] for a in change) for change in changes]
    return f"base={base.name} file={target} changes={shown}"


def peak_rss_mb() -> float:
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="fleetctl-fuzz-"))
