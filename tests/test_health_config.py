"""Health config loading and validation: admins edit this file, so every mistake must be refused, clearly."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from engine.canonical import FACTORS, Factor
from engine.health_config import (
    HealthConfig,
    HealthConfigError,
    default_health_config,
    load_health_config,
)

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "engine" / "health.yaml"
DEFAULT_TEXT = DEFAULT_PATH.read_text(encoding="utf-8")


def _line_of(text: str, key_path: str) -> int:
    """1-based line of ``key_path`` (``a.b``): the first ``b:`` line after the first ``a:`` line."""
    lines = text.splitlines()
    index = 0
    for key in key_path.split("."):
        index = next(i for i in range(index, len(lines)) if lines[i].strip().startswith(f"{key}:"))
    return index + 1


def _edited(old: str, new: str) -> str:
    assert DEFAULT_TEXT.count(old) == 1, f"{old!r} must occur once in health.yaml"
    return DEFAULT_TEXT.replace(old, new)


def _write(tmp_path: Path, text: str, name: str = "health-custom.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the packaged default -------------------------------------------------------------------------------------


def test_default_config_matches_design_section_5() -> None:
    config = load_health_config()
    assert config.weights.as_dict() == {
        Factor.ADOPTION: 25,
        Factor.ENGAGEMENT: 20,
        Factor.SUPPORT: 15,
        Factor.OUTCOMES: 25,
        Factor.RELATIONSHIP: 10,
        Factor.EXPANSION: 5,
    }
    assert (config.bands.healthy, config.bands.at_risk, config.bands.critical) == (80, 60, 40)
    assert config.core_features == ("tasks", "projects", "boards", "reports", "automations", "dashboards")
    assert set(config.core_features) <= set(config.features)
    assert (config.drivers.count, config.drivers.threshold) == (3, 70)
    assert config.actions.adoption == "Run a feature-adoption session on the unused core features"
    assert set(config.actions.as_dict()) == set(FACTORS)
    assert all(text.strip() for text in config.actions.as_dict().values())


def test_none_loads_the_packaged_default_and_an_explicit_path_loads_the_same() -> None:
    assert load_health_config(None) is default_health_config()
    from_file = load_health_config(DEFAULT_PATH)
    assert from_file == load_health_config()
    assert from_file.source == str(DEFAULT_PATH)
    assert load_health_config(str(DEFAULT_PATH)) == from_file


def test_from_mapping_round_trips_and_records_source() -> None:
    config = load_health_config()
    again = HealthConfig.from_mapping(config.model_dump(), source="admin-ui")
    assert again == config
    assert again.source == "admin-ui"


def test_config_is_immutable() -> None:
    config = load_health_config()
    with pytest.raises(ValidationError):
        config.weights.adoption = 99  # type: ignore[misc]


def test_weights_need_not_sum_to_100_and_may_be_floats_or_zero(tmp_path: Path) -> None:
    text = _edited("  adoption: 25\n", "  adoption: 2.5\n")
    text = text.replace("  expansion: 5\n", "  expansion: 0\n", 1)
    config = load_health_config(_write(tmp_path, text))
    assert config.weights.adoption == 2.5
    assert config.weights.expansion == 0


# --- refused files: file name, line, key path and what was expected ------------------------------------------

INVALID_EDITS = [
    pytest.param(
        "  adoption: 25\n",
        "  adoption: abc\n",
        "weights.adoption",
        "expected a non-negative number, got 'abc'",
        id="bad-type",
    ),
    pytest.param(
        "  support: 15\n",
        "  support: -5\n",
        "weights.support",
        "expected a non-negative number, got -5",
        id="negative-weight",
    ),
    pytest.param(
        "  outcomes: 25\n",
        "  outcomes: true\n",
        "weights.outcomes",
        "expected a non-negative number, got True",
        id="boolean-weight",
    ),
    pytest.param(
        "  engagement: 20\n",
        "  engagement: 20\n  adoptoin: 3\n",
        "weights.adoptoin",
        "unknown key; expected one of adoption, engagement",
        id="unknown-weight-key",
    ),
    pytest.param(
        "bands:\n",
        "colour: red\nbands:\n",
        "colour",
        "unknown key; expected one of weights, bands",
        id="unknown-top-level-key",
    ),
    pytest.param(
        "  at_risk: 60\n",
        "  at_risk: 80\n",
        "bands.at_risk",
        "expected a number below bands.healthy (80) so that bands strictly decrease, got 80",
        id="bands-not-decreasing",
    ),
    pytest.param(
        "  critical: 40\n",
        "  critical: 65\n",
        "bands.critical",
        "expected a number below bands.at_risk (60)",
        id="bands-increasing",
    ),
    pytest.param(
        "  healthy: 80\n",
        "  healthy: 120\n",
        "bands.healthy",
        "expected a number between 0 and 100, got 120",
        id="band-out-of-range",
    ),
    pytest.param(
        "  - dashboards\n\n# Risk",
        "  - dashboards\n  - gantt_charts\n\n# Risk",
        "core_features",
        "expected every core feature to be listed in features, got 'gantt_charts' not in features",
        id="core-feature-not-in-features",
    ),
    pytest.param(
        "  count: 3\n",
        "  count: 2.5\n",
        "drivers.count",
        "expected a whole number between 1 and 6, got 2.5",
        id="driver-count-not-integer",
    ),
    pytest.param(
        "  count: 3\n",
        "  count: 0\n",
        "drivers.count",
        "expected a whole number between 1 and 6, got 0",
        id="driver-count-zero",
    ),
    pytest.param(
        "  threshold: 70\n",
        "  threshold: high\n",
        "drivers.threshold",
        "expected a number between 0 and 100, got 'high'",
        id="threshold-not-a-number",
    ),
    pytest.param(
        "  support: Review open tickets and escalations with support and agree a resolution plan\n",
        "  support: '   '\n",
        "actions.support",
        "expected a non-empty action text",
        id="blank-action",
    ),
]


@pytest.mark.parametrize(("old", "new", "key_path", "expected"), INVALID_EDITS)
def test_invalid_file_is_refused_with_file_line_key_and_expectation(
    tmp_path: Path, old: str, new: str, key_path: str, expected: str
) -> None:
    text = _edited(old, new)
    path = _write(tmp_path, text)
    with pytest.raises(HealthConfigError) as info:
        load_health_config(path)
    message = str(info.value)
    assert str(path) in message
    assert f"{key_path}: " in message
    assert expected in message
    problem = next(p for p in info.value.problems if p.path == key_path)
    assert problem.line == _line_of(text, key_path)
    assert f"{path}:{problem.line}: {key_path}: " in message


def test_all_zero_weights_are_refused(tmp_path: Path) -> None:
    text = DEFAULT_TEXT
    for factor, weight in (("adoption", 25), ("engagement", 20), ("support", 15), ("outcomes", 25)):
        text = text.replace(f"  {factor}: {weight}\n", f"  {factor}: 0\n", 1)
    text = text.replace("  relationship: 10\n", "  relationship: 0\n", 1).replace(
        "  expansion: 5\n", "  expansion: 0\n", 1
    )
    path = _write(tmp_path, text)
    with pytest.raises(HealthConfigError, match=r"weights: expected at least one weight above 0") as info:
        load_health_config(path)
    assert str(path) in str(info.value)
    assert info.value.problems[0].line == _line_of(text, "weights")


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    text = _edited("  support: 15\n", "  support: [15\n")
    path = _write(tmp_path, text, name="broken.yaml")
    with pytest.raises(HealthConfigError) as info:
        load_health_config(path)
    message = str(info.value)
    assert "YAML syntax error" in message and "expected valid YAML" in message
    line = info.value.problems[0].line
    assert line is not None and line >= _line_of(text, "weights.support")
    assert f"{path}:{line}:" in message


def test_missing_section_and_missing_key_are_named(tmp_path: Path) -> None:
    start = DEFAULT_TEXT.index("actions:")
    text = DEFAULT_TEXT[:start].replace("  critical: 40\n", "")
    path = _write(tmp_path, text)
    with pytest.raises(HealthConfigError) as info:
        load_health_config(path)
    message = str(info.value)
    assert "actions: missing; expected a mapping of factor name to action text" in message
    assert "bands.critical: missing; expected a number between 0 and 100" in message
    assert "2 problems" in message


def test_duplicate_key_is_refused(tmp_path: Path) -> None:
    text = _edited("  support: 15\n", "  support: 15\n  support: 30\n")
    path = _write(tmp_path, text)
    with pytest.raises(HealthConfigError, match=r"weights\.support: duplicate key; expected each key once"):
        load_health_config(path)


def test_empty_or_non_mapping_file_is_refused(tmp_path: Path) -> None:
    for content in ("", "- just\n- a list\n"):
        path = _write(tmp_path, content)
        with pytest.raises(HealthConfigError, match=r"expected a mapping with keys weights, bands") as info:
            load_health_config(path)
        assert str(path) in str(info.value)


def test_missing_file_is_reported_as_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(HealthConfigError, match="cannot read file") as info:
        load_health_config(path)
    assert str(path) in str(info.value)


def test_from_mapping_errors_name_the_source_and_list_index() -> None:
    data = load_health_config().model_dump()
    data["features"] = [*data["features"], 42]
    data["core_features"] = []
    with pytest.raises(HealthConfigError) as info:
        HealthConfig.from_mapping(data, source="admin-ui")
    message = str(info.value)
    bad_index = len(data["features"]) - 1
    assert f"admin-ui: features[{bad_index}]: expected a feature key (a non-empty string), got 42" in message
    assert "admin-ui: core_features: expected a non-empty list of feature keys" in message
    assert isinstance(info.value, ValueError)


def test_duplicate_features_are_refused() -> None:
    data = load_health_config().model_dump()
    data["features"] = [*data["features"], "tasks"]
    with pytest.raises(HealthConfigError, match=r"features: expected unique feature keys, got 'tasks'"):
        HealthConfig.from_mapping(data)
