"""What a model reads and how a frame becomes its matrix: the feature spec, the frame preparation shared by training
and scoring, the sklearn preprocessor (impute, indicate, scale, clip, one-hot) and its compiled NumPy twin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

MISSING_CATEGORY = "(missing)"


@dataclass(frozen=True)
class FeatureSpec:
    """Which columns the model reads and how: numeric (float, NaN = missing) or categorical (strings)."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.categorical]

    def label(self, name: str) -> str:
        return self.labels.get(name, name)

    def to_dict(self) -> dict[str, Any]:
        return {"numeric": list(self.numeric), "categorical": list(self.categorical), "labels": dict(self.labels)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureSpec:
        return cls(tuple(data["numeric"]), tuple(data.get("categorical", ())), dict(data.get("labels", {})))


def prepare_frame(frame: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """The spec's columns with numeric ones as float64 (NaN = missing) and categorical ones as plain strings.

    Columns that already have the right type are passed through untouched: this runs on every scoring call.
    """
    out = {}
    for name in spec.numeric:
        column = frame[name] if name in frame else pd.Series(np.nan, index=frame.index)
        if column.dtype != "float64":
            column = pd.to_numeric(column, errors="coerce").astype("float64")
        out[name] = column
    for name in spec.categorical:
        column = frame[name] if name in frame else pd.Series(None, index=frame.index, dtype=object)
        values = column.astype(object)
        values = values.where(values.notna(), MISSING_CATEGORY)
        if pd.api.types.infer_dtype(values, skipna=False) != "string":
            values = values.map(str)
        out[name] = values.astype(object)
    return pd.DataFrame(out, index=frame.index)


class FrameSelector(BaseEstimator, TransformerMixin):
    """First pipeline step: put any incoming frame into the spec's columns and types (see prepare_frame)."""

    def __init__(self, spec: FeatureSpec | None = None) -> None:
        self.spec = spec

    def fit(self, X: pd.DataFrame, y: Any = None) -> FrameSelector:  # noqa: N803 - sklearn naming
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:  # noqa: N803
        assert self.spec is not None
        return prepare_frame(X, self.spec)


def _clip5(x: np.ndarray) -> np.ndarray:
    """Standardized values beyond ±5 SD are capped so one extreme account cannot swing a linear model.

    In place: the input is the scaler's fresh output, and a 1M-row panel should not be copied once more.
    """
    return np.clip(x, -5.0, 5.0, out=x)


def make_preprocessor(spec: FeatureSpec) -> ColumnTransformer:
    """Median imputation with missing-value indicators, scaling, clipping; one-hot for categories."""
    numeric = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
            ("scale", StandardScaler(copy=False)),  # scales the imputer's fresh output in place
            ("clip", FunctionTransformer(_clip5, feature_names_out="one-to-one")),
        ]
    )
    parts = [("num", numeric, list(spec.numeric))]
    if spec.categorical:
        parts.append(("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), list(spec.categorical)))
    return ColumnTransformer(parts, sparse_threshold=0.0)


@dataclass
class CompiledTransform:
    """The fitted preprocessor of make_preprocessor as plain NumPy: same output, a fraction of the cost.

    Scoring 100,000 accounts through sklearn's ColumnTransformer spends most of its time in validation and
    per-step conversions; the arithmetic itself (impute, indicators, scale, clip, one-hot) is a few vectorized
    operations. Built once from the fitted pipeline, so both paths use the very same fitted numbers.
    """

    numeric: list[str]
    medians: np.ndarray
    indicators: np.ndarray  # indices (into numeric) of the features that get a missing-value indicator
    mean: np.ndarray
    scale: np.ndarray
    categorical: list[str]
    categories: list[np.ndarray]

    @classmethod
    def from_pipeline(cls, pipeline: Pipeline, spec: FeatureSpec) -> CompiledTransform:
        """Read the fitted imputer, scaler and encoder of a make_candidate pipeline."""
        pre = pipeline.named_steps["pre"]
        numeric = pre.named_transformers_["num"]
        imputer, scaler = numeric.named_steps["impute"], numeric.named_steps["scale"]
        indicator = imputer.indicator_
        categories = list(pre.named_transformers_["cat"].categories_) if spec.categorical else []
        return cls(
            numeric=list(spec.numeric),
            medians=np.asarray(imputer.statistics_, dtype="float64"),
            indicators=np.asarray(indicator.features_ if indicator is not None else [], dtype=np.int64),
            mean=np.asarray(scaler.mean_, dtype="float64"),
            scale=np.asarray(scaler.scale_, dtype="float64"),
            categorical=list(spec.categorical),
            categories=[np.asarray(c, dtype=object) for c in categories],
        )

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        """Model matrix for any frame holding the spec's columns (converted as prepare_frame would).

        Columns are written one by one into a single column-major allocation: no intermediate frame, and every
        write is contiguous.
        """
        n, k = len(frame), len(self.numeric)
        width = k + len(self.indicators) + sum(len(c) for c in self.categories)
        out = np.empty((n, width), order="F")
        for j, name in enumerate(self.numeric):
            column = frame.get(name)
            if column is None:
                out[:, j] = np.nan
            elif column.dtype == "float64":
                out[:, j] = column.to_numpy()
            else:
                out[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
        block = out[:, : k + len(self.indicators)]
        if k:
            num = out[:, :k]
            missing = np.isnan(num)
            out[:, k : k + len(self.indicators)] = missing[:, self.indicators]
            np.copyto(num, np.broadcast_to(self.medians, num.shape), where=missing)
        block -= self.mean
        block /= self.scale
        np.clip(block, -5.0, 5.0, out=block)
        start = block.shape[1]
        for name, categories in zip(self.categorical, self.categories, strict=True):
            values = prepare_frame(frame[[name]] if name in frame else frame.iloc[:, :0], _one(name))[name]
            target = out[:, start : start + len(categories)]
            np.equal(values.to_numpy(dtype=object)[:, None], categories[None, :], out=target, casting="unsafe")
            start += len(categories)
        return out


def _one(name: str) -> FeatureSpec:
    return FeatureSpec((), (name,))
