"""The fast YAML path (libyaml) gives the documents ruamel gives, or leaves them to ruamel."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml.resolver import implicit_resolvers

from esb.config.yamlfast import RESOLVERS, load_fast
from esb.config.yamlpos import Located, load_yaml_ruamel, load_yaml_text
from esb.exceptions import ConfigError
from esb.process.loader import load_processes
from esb.project import Project

ROOT = Path(__file__).resolve().parents[2]


def _typed(value: Any) -> Any:
    """``value`` with the base type of every scalar beside it (ruamel's ScalarFloat counts as float)."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_typed(item) for item in value]
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind.__name__, value
    return type(value).__name__, value


def _same(fast: Located, reference: Located) -> None:
    assert _typed(fast.data) == _typed(reference.data)
    assert fast.lines == reference.lines
    assert fast.file == reference.file


def _repository_yaml() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "*.yaml", "*.yml"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    return [name for name in listed if (ROOT / name).is_file()]


def test_every_yaml_file_of_the_repository_loads_alike() -> None:
    """Each of the repository's YAML files (project, fixtures, layouts) gives ruamel's data and lines."""
    names = _repository_yaml()
    assert len(names) > 100
    taken = 0
    for name in names:
        text = (ROOT / name).read_text(encoding="utf-8")
        fast = load_fast(text, name)
        if fast is None:
            continue
        taken += 1
        _same(fast, load_yaml_ruamel(text, name))
    assert taken >= len(names) - 5  # only documents with timestamps and the like go to ruamel


@pytest.mark.parametrize("name", ["routes.yaml", "config/systems.yaml", "config/settings.yaml"])
def test_the_cold_commands_files_take_the_fast_path(name: str) -> None:
    """routes.yaml, systems.yaml and the settings are read by libyaml (what makes esb health fast)."""
    assert load_fast((ROOT / name).read_text(encoding="utf-8"), name) is not None


def test_the_project_loads_to_the_same_models_either_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole project (systems, routes, processes, settings) gives identical models on both paths."""
    fast, fast_processes = Project.load(ROOT), load_processes(ROOT)
    monkeypatch.setattr("esb.config.yamlfast.load_fast", lambda text, file: None)
    slow, slow_processes = Project.load(ROOT), load_processes(ROOT)
    assert fast.settings == slow.settings
    assert fast.endpoints == slow.endpoints
    assert fast.routes == slow.routes
    assert fast_processes.names() == slow_processes.names() != []
    for name in slow_processes.names():
        assert fast_processes.current(name).process == slow_processes.current(name).process
        assert fast_processes.current(name).doc.lines == slow_processes.current(name).doc.lines


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: 1\nb: -7\nc: 0\nd: 1.5\ne: -0.25\n", id="numbers"),
        pytest.param("a: true\nb: False\nc: TRUE\nd: yes\ne: no\nf: on\ng: off\nh: y\n", id="booleans-1.2"),
        pytest.param("a:\nb: ~\nc: null\nd: Null\ne: NULL\nf: ''\n", id="nulls"),
        pytest.param("a: '1'\nb: \"true\"\nc: |\n  one\n  two\nd: >\n  folded\n  text\n", id="quoted-block"),
        pytest.param("- 1\n- - a\n  - b\n- k: v\n  w: 2\n-\n", id="nested-sequences"),
        pytest.param("200: ok\n1.5: half\ntrue: t\n", id="scalar-keys"),
        pytest.param("名称: 订单\n描述: \"中文 ü\"\n", id="chinese"),
        pytest.param("a: {x: 1, y: [1, 2]}\nb: []\nc: {}\n", id="flow"),
        pytest.param("", id="empty"),
        pytest.param("# only a comment\n", id="comment"),
        pytest.param("just text\n", id="top-scalar"),
        pytest.param("a: 0x1F\nb: 0o17\nc: 017\nd: 1_000\ne: .inf\nf: 1e3\n", id="other-numbers"),
        pytest.param("a: 2024-01-01\nb: 2024-01-01T10:00:00Z\n", id="timestamps"),
        pytest.param("a: &x {k: 1}\nb: *x\nc:\n  <<: *x\n  m: 2\n", id="anchors-merge"),
        pytest.param("a: !!str 12\nb: !!int '3'\nc: !custom v\n", id="explicit-tags"),
        pytest.param("%YAML 1.1\n---\na: yes\nb: 010\n", id="yaml-1.1-directive"),
        pytest.param("? [a, b]\n: c\n", id="complex-key"),
        pytest.param("a: +5\nb: =\nc: .5\n", id="signs"),
    ],
)
def test_documents_load_as_ruamel_loads_them(text: str) -> None:
    """Whatever the fast path takes equals ruamel's document; what it leaves, ruamel loads (same result)."""
    fast = load_fast(text, "x.yaml")
    reference = load_yaml_ruamel(text, "x.yaml")
    if fast is not None:
        _same(fast, reference)
    _same(load_yaml_text(text, "x.yaml"), reference)


def test_the_common_documents_do_not_fall_back() -> None:
    """Plain mappings, sequences, strings, numbers, booleans and nulls are the fast path's own."""
    assert load_fast("a: 1\nb: [x, 'y']\nc: {d: true, e: ~, f: 1.5}\n", "x.yaml") is not None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a: 1\na: 2\n", id="duplicate-key"),
        pytest.param("a: [1, 2\n", id="unclosed-flow"),
        pytest.param("a: 1\n  b: 2\n", id="bad-indent"),
        pytest.param("a: 1\n---\nb: 2\n", id="two-documents"),
        pytest.param("a:\n\t- b\n", id="tab"),
        pytest.param("a: 'unterminated\n", id="unterminated-quote"),
    ],
)
def test_invalid_yaml_is_reported_by_ruamel_as_before(text: str) -> None:
    """An invalid document is not taken by the fast path, and the error is ruamel's, with its line."""
    assert load_fast(text, "x.yaml") is None
    with pytest.raises(ConfigError) as expected:
        load_yaml_ruamel(text, "x.yaml")
    with pytest.raises(ConfigError) as got:
        load_yaml_text(text, "x.yaml")
    assert str(got.value) == str(expected.value)


def test_the_resolvers_are_ruamels_yaml_1_2_resolvers() -> None:
    """The patterns that send a plain scalar to ruamel are ruamel's own YAML 1.2 implicit resolvers."""
    ruamels = {
        str(tag): regexp.pattern
        for versions, tag, regexp, _ in implicit_resolvers
        if (1, 2) in versions and str(tag) != "tag:yaml.org,2002:yaml"
    }
    assert ruamels == RESOLVERS


def test_without_libyaml_everything_goes_to_ruamel(monkeypatch: pytest.MonkeyPatch) -> None:
    """A PyYAML without its C extension (or no PyYAML) leaves every document to ruamel."""
    monkeypatch.setattr("esb.config.yamlfast._PARSER", False)
    assert load_fast("a: 1\n", "x.yaml") is None
    assert load_yaml_text("a: 1\n", "x.yaml").data == {"a": 1}
