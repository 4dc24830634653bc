"""Feature-engineering flags of ``autodl search``: ``--features``, ``--task timeseries``
(``--id-column``, ``--sort-column``, ``--labels``) and ``--entityset``.

* ``--features featuretools|tsfresh`` puts a feature step before the preprocessing: featuretools
  transform primitives on the table's columns, or tsfresh on a table holding one series per row
  (a column per time step).
* ``--task timeseries --data series.csv --id-column id --sort-column time --target label``: a
  long-form series file (a row per observation; see :mod:`autodl.features.io`); the target is a
  column constant within each series, or a column of ``--labels labels.csv`` (a row per id).
  Classification or regression is inferred from the target; tsfresh features are implied
  (``--feature-set minimal|efficient|comprehensive``, default efficient).
* ``--entityset es.yaml --target column``: related tables described in YAML (see
  :mod:`autodl.features.io`); featuretools deep feature synthesis is implied.

Every mistake is a one-line error (exit 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autodl.errors import UserError

FEATURE_KINDS = ("featuretools", "tsfresh")


def feature_fields(args) -> dict[str, Any]:
    """SearchSpec fields for the feature flags (checked; one-line UserErrors)."""
    if args.features is not None and args.features not in FEATURE_KINDS:
        raise UserError(f"unknown features kind '{args.features}'; choose one of: {', '.join(FEATURE_KINDS)}")
    timeseries = args.task == "timeseries"
    series_flags = [f for f, v in (("--id-column", args.id_column), ("--sort-column", args.sort_column),
                                   ("--labels", args.labels)) if v]
    if not timeseries and series_flags:
        raise UserError(f"{', '.join(series_flags)} only apply with --task timeseries")
    fields: dict[str, Any] = {"features": args.features}
    if timeseries:
        if not args.data:
            raise UserError("--task timeseries needs --data FILE with the long-form series")
        if not args.id_column:
            raise UserError("--task timeseries needs --id-column COLUMN naming each series' id")
        if not args.sort_column:
            raise UserError("--task timeseries needs --sort-column COLUMN ordering the observations")
        if args.features not in (None, "tsfresh"):
            raise UserError("--task timeseries uses tsfresh features; drop --features featuretools")
        fields["timeseries"] = {"id_column": args.id_column, "sort_column": args.sort_column,
                                "labels": str(Path(args.labels).resolve()) if args.labels else None}
        fields["features"] = "tsfresh"
    if args.feature_set:
        if fields["features"] != "tsfresh":
            raise UserError("--feature-set applies to tsfresh: use --features tsfresh or --task timeseries")
        fields["features"] = {"kind": "tsfresh", "feature_set": args.feature_set}
    if getattr(args, "entityset", None):
        if args.features not in (None, "featuretools"):
            raise UserError("--entityset uses featuretools features; drop --features tsfresh")
        if not args.target:
            raise UserError("--entityset needs --target COLUMN (a column of the target table)")
        fields["entityset"] = str(Path(args.entityset).resolve())
        fields["features"] = None  # built from the YAML description
    return fields
