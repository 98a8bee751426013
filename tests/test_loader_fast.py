"""The libyaml fast path of engine/manifest/loader.py gives what ruamel's round-trip path gives, to the type.

`parse_text(..., fast=False)` is the reference (ruamel.yaml rt, YAML 1.2): every text here goes through both,
and data (bool vs int vs str, nan, -0.0, key order and key types), positions (and their order) and diagnostics
(summary, detail, line:col) must be identical; where ruamel raises, the fast path must raise the same. The
texts: every manifest of the repository, a corpus of tricky snippets, and seeded generated and mutated texts.
"""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

import pytest

from engine.manifest import yaml_fast
from engine.manifest.loader import parse_text
from tests.conftest import ROOT

pytestmark = pytest.mark.filterwarnings("ignore::Warning")  # ruamel warns of reused anchors; both paths alike


# --------------------------------------------------------------------------------------------- comparison
def same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return len(a) == len(b) and all(
            same(ka, kb) and same(va, vb) for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True)
        )
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a).__module__.startswith("ruamel"):  # e.g. TaggedScalar, only ever from the ruamel path
        return repr(a) == repr(b)
    return a == b


def outcome(text: str, fast: bool) -> Any:
    try:
        docs, diags = parse_text(text, "x.yaml", fast=fast)
    except Exception as exc:  # ruamel crashes on a few texts (`a: -_`): the fast path must crash alike
        return ("raises", type(exc).__name__)
    return (
        [(d.index, d.file, d.data, list(d.positions.items())) for d in docs],
        [(d.severity, d.summary, d.detail, d.source) for d in diags],
    )


def difference(text: str) -> str | None:
    fast, ref = outcome(text, True), outcome(text, False)
    if not same(fast, ref):
        return f"{text!r}\n  fast:   {fast!r}\n  ruamel: {ref!r}"
    return None


def fast_path_taken(text: str) -> bool:
    try:
        yaml_fast.fast_parse(text, "x.yaml", Path("."))
    except yaml_fast.Fallback:
        return False
    return True


def assert_all_same(texts: list[str]) -> None:
    diffs = [d for d in map(difference, texts) if d]
    assert not diffs, f"{len(diffs)} of {len(texts)} texts differ:\n" + "\n".join(diffs[:10])


# --------------------------------------------------------------------------------------------- corpus
SCALARS = """yes no on off y n Y N Yes NO On OFF true false True False TRUE FALSE tRUE null Null NULL ~ nUll
0 -0 +0 1 -1 +1 12 007 08 09 0o17 0o8 0o 0x1F 0xff 0XFF 0x 0x_ 0b101 0b 0b_ 0b2 1_000 1__0 _1 1_ -_ +_ 0_1 0o1_7
0x_1 1:20 190:20:30 1:20.5 1.5 -1.5 +1.5 1. .5 -.5 +.5 ._ 1e5 1E5 1e+5 1.0e-3 1.0E+3 -1e5 .5e+3 .5e3 1_0.5 1.5_
0.0 -0.0 +0.0 .inf -.inf +.inf .Inf .INF .inF .nan .NaN .NAN -.nan +.nan nan inf 1e 1.e5 1.2.3 0.1.2 1,000
2024-01-02 2024-1-2 2001-12-14t21:59:43.10-05:00 2001-12-14T21:59:43Z 2001-12-14T21:59:43.5+01:00 2024-13-45
20240102 12:30 12:30:45 = == < << <<< -a a-b a:b http://x/y?a=1&b=2 a#b esp32-0001 24:0A:C4:00:00:01
${mac|compact} é 😀""".split()


def scalar_texts() -> list[str]:
    """Every scalar form as a value, a sequence item, a key, in flow, quoted, and as a whole document."""
    return [
        form.format(s)
        for s in SCALARS
        for form in (
            "v: {}\n",
            "- {}\n",
            "{}: k\n",
            "{{v: {}}}\n",
            "[{}]\n",
            "v: '{}'\n",
            'v: "{}"\n',
            "{}\n",
            "v: &a {}\nw: *a\n",
        )
    ]


SNIPPETS = [
    # documents: empty ones are skipped, their index counted
    "",
    "\n",
    "# only a comment\n",
    "---\n",
    "---\n---\n",
    "---\n...\n",
    "...\n",
    "---\na: 1\n...\n---\nb: 2\n",
    "---\n---\na: 1\n---\n...\n---\n~\n---\nb: 2\n",
    "a: 1\n---\n",
    "a: 1\n---\n---\n- x\n",
    "--- a\n--- b\n",
    "--- |\n  text\n",
    "--- >\n  folded\n  text\n",
    "---\n# c\n---\nx: 1\n",
    "a: 1\n--- \nb: 2\n",
    "---a: 1\n",
    "a: 1\n...\n# trailing\n",
    "--- null\n--- ~\n--- ''\n",
    "--- []\n--- {}\n",
    "a: 1\n...\n...\n",
    "a\n...\n# c\n...\n",
    "a: 1\n...\n---\n...\n",
    "a: 1\r\n...\r\n...\r\n",
    "--- !!map\na: 1\n",
    # explicit tags and directives: ruamel's own result
    "a: !!str 123\n",
    "a: !!int '12'\n",
    "a: !!float 1\n",
    "a: !!bool true\n",
    "a: !!null ''\n",
    "a: !!map {x: 1}\n",
    "a: !!seq [1]\n",
    "a: !!binary aGVsbG8=\n",
    "a: !!timestamp 2024-01-01\n",
    "a: !custom bar\n",
    "a: !custom {x: 1}\n",
    "a: ! 12\n",
    "a: ! '12'\n",
    "a: ! [1]\n",
    "a: !\n",
    "! {a: 1}\n",
    "a: !<tag:yaml.org,2002:str> 12\n",
    "!!str 1\n",
    "!!str a: 1\n",
    "%YAML 1.1\n---\na: yes\nb: 0755\n",
    "%YAML 1.2\n---\na: yes\n",
    "%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\n",
    # anchors and aliases: a copy per use, positions of the anchored node
    "a: &x true\nb: *x\n",
    "a: &x 12\nb: *x\n",
    "a: &x {p: 1, q: [1, 2]}\nb: *x\nc: [*x, *x]\n",
    "a: &x\n  p: 1\n  q:\n    - r: 2\nb: *x\n",
    "- &x [1, 2]\n- *x\n- *x\n",
    "&r {a: 1}\n",
    "&r [1]\n",
    "&s foo\n",
    "&k key: 1\nother: *k\n",
    "a: &k key\n*k : 1\n",
    "a: &x 1.5\nb: *x\n",
    "a: &x\nb: *x\n",
    "a: &x ~\nb: *x\n",
    "a: *nope\n",
    "a: &x 1\nb: &x 2\nc: *x\n",
    "a: &x [*x]\n",
    "a: &a {b: {<<: *a}}\n",
    "*x : 1\n",
    "a: &x 0x1f\nb: *x\n",
    "a: &x |\n  lit\nb: *x\n",
    "a: &x 2024-01-01\nb: *x\n",
    "&a: [2]\n",
    "[&d: e]\n",
    "a: &é 1\nb: *é\n",
    "a: &x-1_y 1\nb: *x-1_y\n",
    # merge keys: own keys first and winning, then each merged mapping's keys, the first mapping winning
    "base: &b {x: 1, y: {z: 2}}\nother: &o {y: 5, w: 6}\nm:\n  k: 0\n  <<: [*b, *o]\n  x: 9\n",
    "base: &b {x: 1}\nm:\n  <<: *b\n",
    "base: &b {x: 1}\nm:\n  <<: *b\n  x: 2\n",
    "base: &b {x: 1}\nm:\n  x: 2\n  <<: *b\n",
    "m:\n  <<: {a: 1, b: 2}\n  c: 3\n",
    "m:\n  <<: [{a: 1}, {a: 2, b: 3}]\n",
    "m:\n  <<: []\n  a: 1\n",
    "b: &b {x: 1}\nm:\n  <<: *b\n  <<: *b\n",
    "m:\n  <<: 1\n",
    "m:\n  <<: [1]\n",
    "m:\n  '<<': {a: 1}\n",
    'm:\n  "<<": 1\n',
    "a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: {<<: *b, z: 3}\n",
    "a: &a {x: 1, <<: {q: 0}}\nc: {<<: [*a, {q: 5, r: 6}]}\n",
    "- <<\n",
    "a: <<\n",
    "<<: {a: 1}\n",
    "a: &a {x: &n 5}\nb: {<<: *a, y: *n}\n",
    "m: {<<: {a: 1}, a: 2}\n",
    "m: {<<: {a: {deep: [1, 2]}}}\n",
    "m:\n  <<: {a: 1, a: 2}\n",
    "a: &a [1]\nm: {<<: *a}\n",
    "a: &a {k: [x, {y: 1}]}\nb:\n  - <<: *a\n    z: 2\n",
    # the value key `=`
    "=: 1\n",
    "a: =\n",
    "- =\n",
    # flow style
    "{a: 1, b: [x, y, {c: d}], e: {}}\n",
    "[a, b: c, {d: e}]\n",
    "{a: [1, 2], b: {c: [3]}}\n",
    '{"a":1}\n',
    "{a:1}\n",
    "[a:1]\n",
    "{a: 1, }\n",
    "[1, 2, ]\n",
    "{a, b: 1}\n",
    "[? a : b]\n",
    "{? a: 1}\n",
    "{? : 1}\n",
    "{: 1}\n",
    "a: {b: 1,\n  c: 2}\n",
    "a: [1,\n  2]\n",
    "{a: b\n}\n",
    "[\n a,\n b\n]\n",
    "a: {}\nb: []\n",
    "a: {b: }\n",
    "a: [, ]\n",
    "a: [1 2]\n",
    "{a: 1 b: 2}\n",
    "a: [x]]\n",
    "a: {x: 1}}\n",
    "[a, b: ]\n",
    "[a: , b]\n",
    # block scalars
    "a: |\n  line 1\n  line 2\nb: x\n",
    "a: |-\n  text\n\n",
    "a: |+\n  text\n\n\nb: 1\n",
    "a: >\n  folded\n  text\n\n  para\n",
    "a: >-\n  folded\n   more indented\n  back\n",
    "a: >+\n  keep\n\n",
    "a: |2\n   indented\n",
    "a: >2-\n   x\n  y\n",
    "a: |\n  # not a comment\n",
    "a: |  # comment\n  t\n",
    "a: >\n\n  leading blank\n",
    "a: |\n  x\n b: 1\n",
    "- |\n  a\n- >\n  b\n  c\n",
    "a: >\n  a\n\n\n  b\n    c\n  d\n",
    "a: |\n  trailing   \n",
    "a: |1\n  x\n",
    "a: |\n",
    "a: >\n\n",
    "a: |-\n",
    "k: >\n folded\n\n",
    "k: >-\n  a\n  b\n\n\n",
    "a: |#no space\n  x\n",
    "a: >\n \n  more indented than the first blank line\n",
    "a: |\n  \n \n  x\n",
    "a: |2\n \n   x\n",
    # plain multi-line scalars, quoting, comments
    "a: one\n  two\n  three\n",
    "a: one\n\n  two\n",
    "a: 'it''s'\n",
    'a: "tab\\there \\u00e9 \\x41 \\n"\n',
    "a: 'multi\n  line'\n",
    'a: "multi\n  line\\\n  cont"\n',
    'a: "\\N\\_\\L\\P"\n',
    'a: "\\e\\a\\0"\n',
    "a: 'x'y\n",
    'a: "unterminated\n',
    "a: 'unterminated\n",
    'a: "\\q"\n',
    "a: x #c\nb: y# not c\n",
    "a: b: c\n",
    "a: - b\n",
    "a:b\n",
    "a :b\n",
    "a : b\n",
    "key with spaces: v\n",
    "'quoted key': 1\n\"dq key\": 2\n",
    "? complex\n: value\n",
    "? [a, b]\n: c\n",
    "? {a: 1}\n: c\n",
    "? |\n  block key\n: v\n",
    ": novalue\n",
    "a:\n",
    "a:\n  - \n",
    "- \n- ~\n",
    "-\n-\n",
    "-",
    "- # c\n- x",
    "a:\n-\n-\nb: 1",
    "- - \n  - ",
    "- ? \n  : x",
    "? \n: x",
    "a: -1\nb: - 1\n",
    "a: x\n  # c\n  y\n",
    "a: 'x' # c\n",
    "- - - a\n",
    "- a: 1\n  b: 2\n- c: 3\n",
    "a:\n- 1\n- 2\n",
    "a:\n  - 1\n  -   2\n",
    "a:\n    b: 1\n    c:\n        d: 2\n",
    "a:\n  b: 1\n c: 2\n",
    "a: 1\n  b: 2\n",
    "a:\n  b: 1\n    c: 2\n",
    "- a\nb: 1\n",
    "a: 1\n- b\n",
    "a: [\n",
    "{\n",
    "- [a, b\n",
    # unicode, white space, line breaks, control characters
    "name: café\nemoji: 😀\n😀: x\nz: 1\n",
    "a: 日本語\nb: x\n",
    "\ufeffa: 1\n",
    "a: 1\n\ufeffb: 2\n",
    "[a, b]\n\ufeff",
    "a: 1\r\nb: 2\r\n",
    "a: 1\rb: 2\r",
    "a: x\x85b: y\n",
    "a: x\u2028b: y\n",
    'a: "x\u2029y"\n',
    "a: 1\n\n\n\nb: 2\n",
    "a:  spaced   value  \n",
    "  a: 1\n  b: 2\n",
    "a: \x07\n",
    "a: \x00\n",
    'a: "\\x07"\n',
    "a: \ufffe\n",
    "a: \ud800\n",
    "a: \t1\n",
    "\ta: 1\n",
    "a:\n\tb: 1\n",
    "a: [1,\t2]\n",
    "- a\n\t- b\n",
    "a:\tb\n",
    "a: b\t\n",
    "a: b\n\t\n",
    "a: |\n  x\n\t\n",
    'a: "x\ty"\n',
    "a: 1 # \tc\n",
    "\u00e9t\u00e9: \u00e9\n",
    "a: \U0001f600 \U0001f600\nb: [\U0001f600, x]\n",
    "'\U0001f600': {'\U0001f600': 1}\n",
    "{é: 1, 😀: 2, b: 3}\n",
    "[😀😀, é, {b: 1}]\n",
    "é: {😀: [x, y]}\n",
    'a: "x\ry"\n',
    "a: |\r  x\r  y\rb: 1\r",
    "k" * 2000 + ": 1\n",
    'a: "' + "x" * 100_000 + '"\n',
    "a: &" + "x" * 2000 + " 1\n",
    "a: :x\n",
    "a: ?x\n",
    "a: -x\n",
    "[:x]\n",
    "[-x]\n",
    "{?x: 1}\n",
    "a: x:\n",
    "a: x::y\n",
    'a: "\\/"\n',
    "a: 'x'#c\n",
    # duplicate keys: ruamel's diagnostic, and the documents before it
    "a: 1\nb: 2\na: 3\n",
    "a: {x: 1, x: 2}\n",
    "- {x: 1, x: 2}\n",
    "a: 1\n---\nb: 1\nb: 2\n---\nc: 3\n",
    "1: a\n01: b\n",
    "1: a\n0x1: b\n",
    "true: a\nTrue: b\n",
    "1: a\ntrue: b\n",
    "~: a\nnull: b\n",
    "a: 1\n'a': 2\n",
    "1.0: a\n1: b\n",
    ".nan: a\n.nan: b\n",
    "? a\n? a\n",
    "x: 1\n  \nx: 2\n",
    # duplicate keys with merge keys: ruamel constructs a mapping's `<<` sources first, then its own keys
    "b: &b {x: 1, y: 2}\nm:\n  <<: *b\n  k: 1\n  k: 2\n",
    "m:\n  <<: {a: 1}\n  n: {p: 1, p: 2}\n  q: 1\n  q: 2\n",
    "m:\n  k: 1\n  k: 2\n  <<: {a: {z: 1, z: 2}}\n",
    "a: &a {x: {d: 1, d: 2}}\nm:\n  <<: *a\n  k: 1\n  k: 2\n",
    "m:\n  <<: [{a: 1}, {b: {c: 1, c: 2}}]\n  k: 1\n  k: 1\n",
    "- {<<: {x: 1}, a: 1, a: 2}\n",
    "base: &b {k: 1}\nl:\n  - <<: *b\n    z: 1\n    z: 2\n",
    "m:\n  k: 1\n  k: 2\n  <<: *u\n",
    "m:\n  k: 1\n  k: 2\n  <<: 5\n",
    "m: {k: 1, k: 2, <<: {a: 1}, <<: {b: 2}}\n",
    "x: {<<: {a: 1}}\nx: 2\n",
    "kind: T\nmetadata: {name: n}\nspec: {<<: {a: 1}, b: 1, b: 2}\n",
    "a: {b: 1, b: 2}\nc: &c {d: 1}\ne: {<<: *c}\n",
    # syntax errors: ruamel's message and line:col
    "a: [1, 2\nb: 3\n",
    "a: 1\n b: 2\nc\n",
    "- a\n-b\n  c: d\n",
    "a: b\n- c\n",
    "{a: 1\n",
    "a: &\n",
    "a: *\n",
    "a: @x\n",
    "a: `x\n",
    "a: %x\n",
    "- |x\n  a\n",
    'a: "x"y\n',
    "a: 'x'\n  'y'\n",
    "[a]: 1\n",
    "a: 1\n---\n- [\n---\nb: 2\n",
    "key: value\nkey2: [unclosed\n",
    ": \n",
    "?\n",
    "a: ? b\n",
    "...\n---\na: ]\n",
    # keys of other types
    "1: a\n2.5: b\ntrue: c\n~: d\n0x10: e\n2024-01-01: f\n",
    "null: a\n",
    "'1': a\n1: b\n",
    "-1: a\n+2: b\n",
    "0o17: a\n017: b\n1_000: c\n",
    ".inf: a\n",
    "yes: a\nno: b\non: c\n",
    "=: a\n'=': b\n",
    # nesting: the fast path's limit, ruamel's recursion
    "a:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 60)) + "  " * 60 + "v: 1\n",
    "[" * 50 + "1" + "]" * 50 + "\n",
    "a: " + "[" * 100 + "]" * 100 + "\n",
    "a: " + "[" * 101 + "]" * 101 + "\n",
    "a: " + "[" * 300 + "]" * 300 + "\n",
    "- " * 150 + "x\n",
    # past the depth limit where libyaml's composer would recurse without end: the fast path finds the node on
    # libyaml's events and reports it as ruamel does
    "- " * 500 + "x\n",
    "a: " + "[" * 1500 + "]" * 1500 + "\n",
    "a: {b: " + "{c: " * 1200 + "}" * 1201 + "\n",
    "x: 1\n---\n" + "[" * 1001 + "\n",
    "a: '" + "[" * 1200 + "'\n",
]

FLEETISH = """\
apiVersion: aws.fleetctl.io/v1
kind: Thing
metadata: {name: esp32-240AC4000001, target: aws-eu, labels: {site: site-1}}
spec:
  thingType: esp32
  attributes: {mac: "24:0A:C4:00:00:01", site: site-1, count: 12, ratio: 0.5, on: yes, enabled: true}
  groups: [esp32-fleet]
---
apiVersion: fleetctl.io/v1
kind: Target
metadata:
  name: aws-eu   # comment
spec:
  aws:
    region: eu-west-2
    tags:
      - &t {Key: env, Value: prod}
      - *t
  registers:
    0x10: {name: ctrl, width: 8}
    0x11: {name: status, width: 16, reset: 0xFFFF}
  script: |
    #!/bin/sh
    echo "${NAME}"
  note: >
    folded text
    over lines
"""


def repository_manifests() -> list[Path]:
    skip = {".git", ".venv", "node_modules", "__pycache__"}
    return sorted(
        p for p in ROOT.rglob("*.y*ml") if p.suffix in (".yaml", ".yml") and not skip & set(p.relative_to(ROOT).parts)
    )


# --------------------------------------------------------------------------------------------- tests
def test_every_repository_manifest_takes_the_fast_path_with_identical_results():
    files = repository_manifests()
    fleet = [p for p in files if p.relative_to(ROOT).parts[0] == "fleet"]
    assert len(fleet) >= 5, fleet
    texts = [p.read_text(encoding="utf-8") for p in files]
    assert_all_same(texts)
    slow = [str(p.relative_to(ROOT)) for p in fleet if not fast_path_taken(p.read_text(encoding="utf-8"))]
    assert not slow, f"fleet/ manifests the fast path leaves to ruamel: {slow}"


def test_scalar_forms_resolve_as_ruamel_yaml_1_2():
    assert_all_same(scalar_texts())


def test_tricky_snippets():
    assert_all_same(SNIPPETS + [FLEETISH])


def test_the_fast_path_is_taken_for_ordinary_yaml_and_left_for_what_it_cannot_reproduce():
    for text in [
        "a: 1\n",
        FLEETISH,
        "a: &x {p: 1}\nb: {<<: *x, q: 2}\n",
        "v: 0x1F\nw: .nan\nx: 2024-01-02\n",
        "- |\n  a\n- >-\n  b\n",
        "--- \n---\na: 'x'\n",
        'a: "tab\\t"\n',
        "a: 1\na: 2\n",
    ]:  # a duplicate key: the fast path gives ruamel's diagnostic itself
        assert fast_path_taken(text), text
    for text in [
        "a: !!str 1\n",
        "a: !x 1\n",
        "a: ! 1\n",
        "%YAML 1.1\n---\na: 1\n",
        "a:\tb\n",
        "a: x\x85\n",
        "a: [1\n",
        "a: <<\n",
        "a: =\n",
        "1.5: a\n",
        "{? : 1}\n",
        "&a: 1\n",
        "a: -_\n",
        "b: &b {x: 1}\nm: {<<: *b, <<: *b}\n",
        "a: &x [*x]\n",
        "a: |#c\n  x\n",
        "a: |\n \n  x\n",
        "a: 1\n...\n...\n",
        "a: " + "[" * 101 + "]" * 101 + "\n",
    ]:
        assert not fast_path_taken(text), text


def test_resolution_is_yaml_1_2_not_pyyaml_1_1():
    docs, diags = parse_text(
        "a: yes\nb: on\nc: 0o17\nd: 017\ne: 1_000\nf: 0b11\ng: -.inf\nh: ~\ni: 1:20\n"
        "j: True\nk: 2024-01-02\nl: '1'\nm: 0x1F\nn: 1e3\n",
        "x.yaml",
    )
    assert not diags
    data = docs[0].data
    assert data == {
        "a": "yes",
        "b": "on",
        "c": 15,
        "d": 17,
        "e": 1000,
        "f": 3,
        "g": -math.inf,
        "h": None,
        "i": "1:20",
        "j": True,
        "k": data["k"],
        "l": "1",
        "m": 31,
        "n": 1000.0,
    }
    assert type(data["j"]) is bool and type(data["c"]) is int and type(data["n"]) is float
    assert str(data["k"]) == "2024-01-02"


def test_positions_of_keys_items_aliases_and_merges():
    text = "base: &b\n  x: 1\n  y: [p, q]\nm:\n  k: 0\n  <<: *b\nl:\n  - *b\n"
    (doc,), diags = parse_text(text, "x.yaml")
    assert not diags
    assert doc.data == {
        "base": {"x": 1, "y": ["p", "q"]},
        "m": {"k": 0, "x": 1, "y": ["p", "q"]},
        "l": [{"x": 1, "y": ["p", "q"]}],
    }
    pos = doc.positions
    assert pos[()] == (1, 1) and pos[("base",)] == (1, 1) and pos[("base", "x")] == (2, 3)
    assert pos[("m", "k")] == (5, 3)
    # ruamel records no position for a merged key (it was written in the anchored mapping), but the merged
    # value's own keys and items keep where they were written: the fast path matches it, oddity included
    assert ("m", "x") not in pos and ("m", "y") not in pos and pos[("m", "y", 0)] == (3, 7)
    assert doc.source(("m", "x")).line == 4  # a missing position points at the parent
    # an alias as a sequence item: its position is the anchored node's
    assert pos[("l", 0)] == (1, 7) and pos[("l", 0, "x")] == (2, 3)


def test_anchored_booleans_stay_booleans_on_both_paths():
    # ruamel constructs an anchored `true` as ScalarBoolean, an int subclass: the reference path used to turn
    # it into 1; both paths now give True
    for fast in (True, False):
        (doc,), _ = parse_text("a: &x true\nb: *x\nc: &y false\n", "x.yaml", fast=fast)
        assert doc.data == {"a": True, "b": True, "c": False}
        assert all(type(v) is bool for v in doc.data.values())


def test_diagnostics_duplicate_key_and_syntax_error():
    docs, diags = parse_text("a: 1\n---\nkind: X\nspec: 1\nspec: 2\n---\nb: 2\n", "dup.yaml")
    assert [d.index for d in docs] == [0]
    assert [(d.summary, d.source.line, d.source.col) for d in diags] == [("duplicate key in mapping", 5, 1)]
    assert '"spec"' in diags[0].detail
    docs, diags = parse_text("a: 1\n---\nb: [1, 2\nc: 3\n", "bad.yaml")
    assert [d.index for d in docs] == [0]
    assert len(diags) == 1 and diags[0].summary.startswith("invalid YAML: ")
    assert (diags[0].source.line, diags[0].source.col) == (4, 2)


def test_a_large_plain_yaml_shard_takes_the_fast_path():
    """The W1 benchmark's shape (benchmarks/bench_scale.py write_plain): 1,000 things in one file."""
    docs = [
        f"apiVersion: aws.fleetctl.io/v1\nkind: Thing\nmetadata: {{name: esp32-{i:012X}, target: aws-eu, "
        f"labels: {{site: site-{i % 20}}}}}\nspec:\n  thingType: esp32\n"
        f'  attributes: {{mac: "24:0A:C4:{i:06X}", site: site-{i % 20}}}\n  groups: [esp32-fleet]\n'
        for i in range(1000)
    ]
    text = "---\n".join(docs)
    assert fast_path_taken(text)
    got, diags = parse_text(text, "things.yaml")
    assert not diags and len(got) == 1000 and got[-1].index == 999
    assert_all_same(["---\n".join(docs[:50])])


# --------------------------------------------------------------------------------------------- generated
WORDS = [
    "esp32",
    "a b",
    "x:y",
    "a#b",
    "é",
    "😀",
    "C:\\path",
    "http://h/p?x=1&y=2",
    "x-",
    "key",
    "it's",
    'say "hi"',
    "${mac|compact}",
    "x?",
]
QUOTED_WORDS = WORDS + SCALARS + ["\\t", "\\n", "\\u00e9", "\\x41", "\\\\", '\\"', "\\ ", "\\/", " ", ""]


class Generator:
    """Random YAML in the shapes people write (block and flow collections, every scalar form, block scalars,
    comments, blank lines, anchors, aliases, merges, documents), about half of it valid."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.anchors: list[str] = []

    def scalar(self, key: bool = False) -> str:
        rng = self.rng
        r = rng.random()
        if self.anchors and not key and r < 0.05:
            return "*" + rng.choice(self.anchors)
        if r < 0.45:
            return rng.choice(SCALARS)
        if r < 0.6:
            return rng.choice(WORDS)
        if r < 0.75:
            return "'" + rng.choice(WORDS + SCALARS).replace("'", "''") + "'"
        return '"' + rng.choice(QUOTED_WORDS) + '"'

    def anchor(self) -> str:
        if self.rng.random() < 0.08:
            name = self.rng.choice(["a", "b", "x1", "anc-2", "a_b"])
            self.anchors.append(name)
            return f"&{name} "
        return ""

    def eol(self) -> str:
        return self.rng.choice(["", "", "", "", " # comment", "  ", " "])

    def flow(self, depth: int) -> str:
        rng = self.rng
        r = rng.random()
        if depth > 2 or r < 0.4:
            return self.scalar()
        sep = rng.choice([", ", ",", " , ", ",\n  "])
        if r < 0.7:
            items = [self.anchor() + self.flow(depth + 1) for _ in range(rng.randint(0, 4))]
            return "[" + sep.join(items) + (rng.choice(["", ","]) if items else "") + "]"
        items = [
            self.scalar(key=True) + rng.choice([": ", " : ", ":\n   "]) + self.flow(depth + 1)
            for _ in range(rng.randint(0, 4))
        ]
        return "{" + sep.join(items) + "}"

    def block_scalar(self, indent: int) -> str:
        rng = self.rng
        head = rng.choice("|>") + rng.choice(["", "", "-", "+"]) + rng.choice(["", "", "", "1", "2"])
        step = indent + rng.choice([1, 2, 2, 4])
        body = rng.choice(["", "", "", "\n", " " * rng.randint(1, step) + "\n"])
        for _ in range(rng.randint(0, 5)):
            r = rng.random()
            if r < 0.2:
                body += "\n"
            elif r < 0.3 and body.strip():
                body += " " * rng.randint(0, step + 3) + "\n"
            else:
                body += (
                    " " * (step + rng.choice([0, 0, 0, 1, 2]))
                    + rng.choice(WORDS + SCALARS + ["# x", "- i"])
                    + rng.choice(["", "", " "])
                    + "\n"
                )
        return head + self.eol() + "\n" + body

    def node(self, indent: int, depth: int) -> str:
        rng = self.rng
        r = rng.random()
        if depth > 3 or r < 0.3:
            return " " + self.anchor() + self.scalar() + self.eol() + "\n"
        if r < 0.4:
            return " " + self.anchor() + self.flow(0) + self.eol() + "\n"
        if r < 0.5:
            return " " + self.block_scalar(indent)
        if r < 0.55:
            return " first\n" + " " * (indent + 1) + "second\n"
        inner = indent + rng.choice([2, 2, 3, 4])
        head = (" " + self.anchor()).rstrip() + self.eol() + "\n"
        if r < 0.75:
            return head + self.sequence(rng.choice([indent, inner]) if depth else indent, depth + 1)
        return head + self.mapping(inner, depth + 1)

    def blank(self) -> str:
        return self.rng.choice(["", "", "", "", "", "", "\n", " " * self.rng.randint(1, 6) + "\n", "  # c\n"])

    def mapping(self, indent: int, depth: int) -> str:
        out, keys = "", set()
        for _ in range(self.rng.randint(1, 5)):
            if self.anchors and self.rng.random() < 0.05:
                out += (
                    " " * indent
                    + "<<: "
                    + self.rng.choice(
                        ["*" + self.rng.choice(self.anchors), "[" + ", ".join("*" + a for a in self.anchors[:2]) + "]"]
                    )
                    + "\n"
                )
                continue
            key = self.scalar(key=True)
            if key in keys and self.rng.random() < 0.8:
                continue
            keys.add(key)
            out += self.blank() + " " * indent + key + self.rng.choice([":", ":", " :"]) + self.node(indent, depth)
        return out

    def sequence(self, indent: int, depth: int) -> str:
        return "".join(
            self.blank() + " " * indent + "-" + self.node(indent + 2, depth) for _ in range(self.rng.randint(1, 4))
        )

    def document(self) -> str:
        self.anchors.clear()
        r = self.rng.random()
        if r < 0.6:
            return self.mapping(0, 0)
        if r < 0.8:
            return self.sequence(0, 0)
        return (self.flow(0) if r < 0.9 else self.scalar()) + "\n"

    def text(self) -> str:
        rng = self.rng
        out = ""
        for i in range(rng.randint(1, 3)):
            if i or rng.random() < 0.3:
                out += rng.choice(["---\n", "--- \n", "---\n\n", "--- # c\n"])
            out += self.document()
            out += rng.choice(["", "", "", "", "...\n", "---\n"])
        if rng.random() < 0.1:
            out = out.replace("\n", "\r\n")
        if rng.random() < 0.3:  # one stray character: errors, and the odd valid surprise
            i = rng.randrange(len(out) + 1)
            out = (
                out[:i]
                + rng.choice([" ", "\n", ":", "-", "#", "'", '"', "  ", "\n  ", "[", "{", ",", "|", ">"])
                + out[i:]
            )
        return out


def test_generated_documents():
    gen = Generator(20261121)
    texts = [gen.text() for _ in range(400)]
    assert sum(map(fast_path_taken, texts)) >= 60  # the fast path is exercised, not only the fallback
    assert_all_same(texts)


def test_mutated_manifests():
    """Random edits of the corpus and the repository's manifests: where libyaml and ruamel part ways."""
    rng = random.Random(7)
    base = [t for t in SNIPPETS + [FLEETISH] if t] + [p.read_text(encoding="utf-8") for p in repository_manifests()]
    alphabet = list(" :-[]{},#&*!|>'\"%@`?\n\n  ~.0123456789abcxyz<=_+eE\\\r") + [
        "  ",
        "- ",
        ": ",
        "\n  ",
        "\n- ",
        "---\n",
        "...\n",
        "&a ",
        "*a",
        "<<: ",
        "true",
        "null",
        "0x1",
        "1e3",
        "\ufeff",
        "é",
    ]
    texts = []
    for _ in range(600):
        text = rng.choice(base)
        if len(text) > 3000:
            start = rng.randrange(len(text) - 2000)
            text = text[start : start + 2000]
        for _ in range(rng.randint(1, 4)):
            i, op = rng.randrange(len(text) + 1), rng.random()
            if op < 0.45:
                text = text[:i] + rng.choice(alphabet) + text[i:]
            elif op < 0.8:
                text = text[:i] + text[i + rng.randint(1, 3) :]
            else:
                j = rng.randrange(len(text) + 1)
                text = text[:i] + text[min(i, j) : max(i, j)] + text[i:]
        texts.append(text)
    assert_all_same(texts)
