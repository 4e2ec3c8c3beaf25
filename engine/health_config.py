"""Health-score configuration: weights, bands, features, drivers and actions (DESIGN.md section 5).

Admins edit this file, so a mistake must be refused before it silently skews every account's score: the
config is validated with pydantic on load, unknown keys are refused (a misspelt ``adoptoin`` would
otherwise be ignored and the factor would keep its old weight), and every problem is reported as
``file:line: key.path: expected ..., got ...`` so it can be fixed without reading this code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from engine.canonical import FACTORS, METRIC_COLUMNS, Factor
from engine.curves import Curve, check_table
from engine.yaml_lines import line_of

__all__ = [
    "ActionTexts",
    "BandThresholds",
    "CurveTable",
    "FactorCurveTables",
    "DriverSettings",
    "FactorWeights",
    "HealthConfig",
    "HealthConfigError",
    "Problem",
    "default_health_config",
    "load_health_config",
]

DEFAULT_CONFIG_NAME = "health.yaml"

# Strict numbers: YAML already yields ints/floats, so a string such as "25%" or a boolean is a typo.
_Weight = Annotated[float, Field(ge=0, strict=True, allow_inf_nan=False)]
_Percent = Annotated[float, Field(ge=0, le=100, strict=True, allow_inf_nan=False)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FactorWeights(_Section):
    """Relative weight per factor; normalized by the scorer, so only ratios matter."""

    adoption: _Weight
    engagement: _Weight
    support: _Weight
    outcomes: _Weight
    relationship: _Weight
    expansion: _Weight

    @model_validator(mode="after")
    def _some_positive(self) -> FactorWeights:
        if not any(w > 0 for w in self.as_dict().values()):
            raise ValueError("expected at least one weight above 0, got all weights 0")
        return self

    def as_dict(self) -> dict[Factor, float]:
        """Weights keyed by Factor, in canonical factor order."""
        return {f: float(getattr(self, f.value)) for f in FACTORS}


class BandThresholds(_Section):
    """Inclusive lower bound of each band; anything below ``critical`` is churning."""

    healthy: _Percent
    at_risk: _Percent
    critical: _Percent

    @field_validator("at_risk")
    @classmethod
    def _below_healthy(cls, v: float, info: ValidationInfo) -> float:
        return _strictly_below(v, info, "healthy")

    @field_validator("critical")
    @classmethod
    def _below_at_risk(cls, v: float, info: ValidationInfo) -> float:
        return _strictly_below(v, info, "at_risk")


def _strictly_below(v: float, info: ValidationInfo, upper: str) -> float:
    # Only compare when the upper bound itself was valid; otherwise its own error is the one to report.
    if upper in info.data and not v < info.data[upper]:
        raise ValueError(
            f"expected a number below bands.{upper} ({_fmt(info.data[upper])}) "
            f"so that bands strictly decrease, got {_fmt(v)}"
        )
    return v


_FeatureKey = Annotated[str, Field(strict=True, min_length=1)]


class DriverSettings(_Section):
    """How many risk drivers to report, and the factor score under which a factor counts as one."""

    count: Annotated[int, Field(ge=1, le=len(FACTORS), strict=True)]
    threshold: _Percent


_ActionText = Annotated[str, Field(strict=True, min_length=1)]


class ActionTexts(_Section):
    """Recommended action text per factor, shown when that factor is a risk driver."""

    adoption: _ActionText
    engagement: _ActionText
    support: _ActionText
    outcomes: _ActionText
    relationship: _ActionText
    expansion: _ActionText

    @field_validator("*")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError(f"expected a non-empty action text, got {v!r}")
        return v.strip()

    def as_dict(self) -> dict[Factor, str]:
        """Action texts keyed by Factor, in canonical factor order."""
        return {f: getattr(self, f.value) for f in FACTORS}


_Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


class CurveTable(_Section):
    """One sub-criterion's range table: [metric value, score] points (linear between them, flat outside) and its
    weight within the factor."""

    weight: Annotated[float, Field(gt=0, strict=True, allow_inf_nan=False)]
    points: tuple[tuple[_Number, _Percent], ...]

    @field_validator("points")
    @classmethod
    def _usable(cls, v: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        check_table(tuple(x for x, _ in v), tuple(y for _, y in v))
        return v


class FactorCurveTables(_Section):
    """Per factor: metric name (engine.canonical.METRIC_COLUMNS) -> its range table."""

    adoption: Annotated[dict[str, CurveTable], Field(min_length=1)]
    engagement: Annotated[dict[str, CurveTable], Field(min_length=1)]
    support: Annotated[dict[str, CurveTable], Field(min_length=1)]
    outcomes: Annotated[dict[str, CurveTable], Field(min_length=1)]
    relationship: Annotated[dict[str, CurveTable], Field(min_length=1)]
    expansion: Annotated[dict[str, CurveTable], Field(min_length=1)]

    @field_validator("*")
    @classmethod
    def _known_metrics(cls, v: dict[str, CurveTable]) -> dict[str, CurveTable]:
        unknown = [m for m in v if m not in METRIC_COLUMNS or m == "tenure_days"]
        if unknown:
            known = ", ".join(m for m in METRIC_COLUMNS if m != "tenure_days")
            raise ValueError(f"expected metric names ({known}), got {', '.join(map(repr, unknown))}")
        return v

    def __hash__(self) -> int:
        return hash(self.model_dump_json())

    def as_curves(self) -> dict[Factor, tuple[Curve, ...]]:
        """The engine's curves, keyed by Factor in canonical order."""
        return {
            f: tuple(
                Curve(metric, tuple(x for x, _ in t.points), tuple(y for _, y in t.points), t.weight)
                for metric, t in getattr(self, f.value).items()
            )
            for f in FACTORS
        }


class HealthConfig(_Section):
    """The validated health configuration. Immutable, so one instance can be shared by every scoring run."""

    weights: FactorWeights
    bands: BandThresholds
    features: Annotated[tuple[_FeatureKey, ...], Field(min_length=1)]
    core_features: Annotated[tuple[_FeatureKey, ...], Field(min_length=1)]
    drivers: DriverSettings
    actions: ActionTexts
    curves: FactorCurveTables

    _source: str = PrivateAttr(default="<mapping>")
    _curves: dict[Factor, tuple[Curve, ...]] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        # Built once per config: scoring reads them for every chunk of every run.
        self._curves = self.curves.as_curves()

    @property
    def factor_curves(self) -> dict[Factor, tuple[Curve, ...]]:
        """Each factor's sub-criterion curves (the ``curves`` tables, checked), in canonical factor order."""
        return self._curves

    @field_validator("features", "core_features")
    @classmethod
    def _unique(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        dupes = sorted({k for k in v if v.count(k) > 1})
        if dupes:
            listed = ", ".join(map(repr, dupes))
            raise ValueError(f"expected unique feature keys, got {listed} more than once")
        return v

    @field_validator("core_features")
    @classmethod
    def _core_are_features(cls, v: tuple[str, ...], info: ValidationInfo) -> tuple[str, ...]:
        features = info.data.get("features")
        if features is not None:
            unknown = [k for k in v if k not in features]
            if unknown:
                raise ValueError(
                    "expected every core feature to be listed in features, got "
                    f"{', '.join(map(repr, unknown))} not in features"
                )
        return v

    def __eq__(self, other: object) -> bool:
        # Same settings = same config, wherever they were loaded from (pydantic would also compare ``_source``).
        if not isinstance(other, HealthConfig):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(tuple(self.__dict__.values()))

    @property
    def source(self) -> str:
        """Where this config came from (a file path or the name given to from_mapping)."""
        return self._source

    @classmethod
    def from_mapping(cls, data: Any, source: str = "<mapping>") -> HealthConfig:
        """Validate plain data (e.g. parsed YAML); raise HealthConfigError naming ``source`` on a problem."""
        return _validate(data, source, None)


@dataclass(frozen=True)
class Problem:
    """One validation problem: the key path (``weights.adoption``), its line when known, and the message."""

    path: str
    message: str
    line: int | None = None

    def render(self, source: str) -> str:
        where = f"{source}:{self.line}" if self.line is not None else source
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class HealthConfigError(ValueError):
    """An invalid health config; ``str()`` lists every problem as ``file:line: key.path: expected ...``."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        lines = [p.render(source) for p in problems]
        if len(lines) == 1:
            text = f"invalid health config: {lines[0]}"
        else:
            text = f"invalid health config ({len(lines)} problems):\n  " + "\n  ".join(lines)
        super().__init__(text)


# What each key expects, in words, for error messages. "*" matches any key or list index below its parent.
_EXPECTED: dict[str, str] = {
    "": "a mapping with keys weights, bands, features, core_features, drivers, actions, curves",
    "weights": "a mapping of factor name to weight (" + ", ".join(f.value for f in FACTORS) + ")",
    "weights.*": "a non-negative number",
    "bands": "a mapping with keys healthy, at_risk, critical",
    "bands.*": "a number between 0 and 100",
    "features": "a non-empty list of feature keys",
    "features.*": "a feature key (a non-empty string)",
    "core_features": "a non-empty list of feature keys, each also listed in features",
    "core_features.*": "a feature key (a non-empty string)",
    "drivers": "a mapping with keys count, threshold",
    "drivers.count": f"a whole number between 1 and {len(FACTORS)}",
    "drivers.threshold": "a number between 0 and 100",
    "actions": "a mapping of factor name to action text (" + ", ".join(f.value for f in FACTORS) + ")",
    "actions.*": "a non-empty action text",
    "curves": "a mapping of factor name to its range tables (" + ", ".join(f.value for f in FACTORS) + ")",
    "curves.*": "a mapping of metric name to {weight, points}",
    "curves.*.*": "a mapping with keys weight, points",
    "curves.*.*.weight": "a number above 0",
    "curves.*.*.points": "a list of [metric value, score 0-100] pairs",
    "curves.*.*.points.*": "a [metric value, score 0-100] pair",
}

_ALLOWED_KEYS: dict[str, list[str]] = {
    "": list(HealthConfig.model_fields),
    "weights": list(FactorWeights.model_fields),
    "bands": list(BandThresholds.model_fields),
    "drivers": list(DriverSettings.model_fields),
    "actions": list(ActionTexts.model_fields),
    "curves": list(FactorCurveTables.model_fields),
}

# A renamed Factor must break here, at import, rather than leave a factor silently unweighted.
assert set(FactorWeights.model_fields) == {f.value for f in FACTORS}, "FactorWeights out of sync with Factor"
assert set(ActionTexts.model_fields) == {f.value for f in FACTORS}, "ActionTexts out of sync with Factor"
assert set(FactorCurveTables.model_fields) == {f.value for f in FACTORS}, "FactorCurveTables out of sync with Factor"


def _fmt(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return repr(v)


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _expected(loc: tuple[int | str, ...]) -> str:
    """The words of the most specific _EXPECTED pattern matching ``loc`` ("*" = any key; a list item is "*")."""
    keys = [str(p) for p in loc if not isinstance(p, int)]
    if loc and isinstance(loc[-1], int):
        keys.append("*")
    matches = [
        (pattern.count("*"), text)
        for pattern, text in _EXPECTED.items()
        if len(parts := pattern.split(".") if pattern else []) == len(keys)
        and all(p in ("*", k) for p, k in zip(parts, keys, strict=True))
    ]
    return min(matches, key=lambda m: m[0])[1] if matches else "a valid value"


def _problem_from_error(err: Mapping[str, Any]) -> tuple[tuple[int | str, ...], str]:
    loc = tuple(err["loc"])
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = ".".join(str(p) for p in loc[:-1])
        allowed = _ALLOWED_KEYS.get(parent, [])
        return loc, f"unknown key; expected one of {', '.join(allowed)}"
    if kind == "missing":
        return loc, f"missing; expected {_expected(loc)}"
    if kind in ("value_error", "assertion_error"):
        msg = str(err.get("ctx", {}).get("error", err["msg"]))
        return loc, msg
    return loc, f"expected {_expected(loc)}, got {_fmt(err.get('input'))}"


def _validate(data: Any, source: str, root: yaml.Node | None) -> HealthConfig:
    if not isinstance(data, Mapping):
        line = root.start_mark.line + 1 if root is not None else None
        message = f"expected {_EXPECTED['']}, got {_fmt(data)}"
        raise HealthConfigError(source, [Problem("<root>", message, line)])
    try:
        config = HealthConfig.model_validate(dict(data))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc, message = _problem_from_error(err)
            problems.append(Problem(_path(loc) or "<root>", message, line_of(root, loc)))
        raise HealthConfigError(source, problems) from None
    config._source = source
    return config


def _duplicate_keys(node: yaml.Node | None, prefix: tuple[int | str, ...] = ()) -> list[Problem]:
    """PyYAML silently keeps the last of two equal keys; a doubled ``weights:`` is a mistake: refuse it."""
    problems: list[Problem] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                line = key.start_mark.line + 1
                message = "duplicate key; expected each key once"
                problems.append(Problem(_path((*prefix, name)), message, line))
            seen.add(name)
            problems += _duplicate_keys(value, (*prefix, name))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            problems += _duplicate_keys(item, (*prefix, i))
    return problems


def _parse(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
        if context and context_mark is not None and mark is not None and context_mark.line != mark.line:
            problem += f" ({context} started on line {context_mark.line + 1})"
        message = f"YAML syntax error: {problem}; expected valid YAML"
        raise HealthConfigError(source, [Problem("", message, line)]) from None
    dupes = _duplicate_keys(root)
    if dupes:
        raise HealthConfigError(source, dupes)
    return data, root


def load_health_config(path: str | Path | None = None) -> HealthConfig:
    """Load and validate a health config file; ``None`` loads the packaged default (engine/health.yaml).

    Raises HealthConfigError (a ValueError) naming the file, line, key path and what was expected.
    """
    if path is None:
        return default_health_config()
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise HealthConfigError(source, [Problem("", f"cannot read file: {exc.strerror or exc}")]) from exc
    data, root = _parse(text, source)
    return _validate(data, source, root)


@cache
def default_health_config() -> HealthConfig:
    """The packaged default config, parsed once (the config is immutable, so sharing it is safe)."""
    # Next to this module (shipped as package data). Not importlib.resources: an editable install made before
    # engine/__init__.py existed maps ``engine`` as a namespace package, which resources.files() rejects.
    path = Path(__file__).with_name(DEFAULT_CONFIG_NAME)
    source = f"engine/{DEFAULT_CONFIG_NAME}"
    data, root = _parse(path.read_text(encoding="utf-8"), source)
    return _validate(data, source, root)
