"""Reading feature-engineering inputs from files, for ``autodl search``.

Long-form time series (``--task timeseries``)
    One CSV/Parquet row per observation: an id column (``--id-column``), an ordering column
    (``--sort-column``; numbers or timestamps), and one column per measured quantity. The target
    is either a column of the same file, constant within each id (``--target``), or a column of
    a separate table with one row per id (``--labels labels.csv --target label``; it must hold
    the id column too). :func:`load_series` turns this into one row per series (columns
    ``<quantity>__<step>``, shorter series padded with NaN), which
    :class:`~autodl.features.TsfreshTransformer` reads back with ``kind_sep="__"``.

Entity sets (``--entityset es.yaml``)
    A YAML file describing related tables for featuretools::

        target: customers            # rows to predict; --target names a column of this table
        tables:
          customers: {path: customers.csv, index: customer_id, time_index: join_date}
          sessions:  {path: sessions.csv, index: session_id, time_index: session_start}
          transactions: {path: transactions.csv, index: transaction_id,
                         time_index: transaction_time, parse_dates: [transaction_time]}
        relationships:               # [parent, parent column, child, child column]
          - [customers, customer_id, sessions, customer_id]
          - [sessions, session_id, transactions, session_id]
        max_depth: 2                 # optional
        agg_primitives: [sum, mean, count, max, min, std, num_unique, mode]   # optional
        trans_primitives: [month, weekday]                                    # optional

    Paths are relative to the YAML file. Time indexes and ``parse_dates`` columns are parsed as
    dates.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


from autodl.errors import DataError, UserError

SEP = "__"


def _columns_hint(df) -> str:
    cols = ", ".join(map(str, df.columns[:12])) + (", ..." if df.shape[1] > 12 else "")
    return f"its columns are: {cols}"


def load_series(path: str | Path, target: str | None, id_column: str | None, sort_column: str | None,
                labels: str | Path | None = None):
    """``(X, y)``: one wide row per series id and its target (see the module docstring)."""
    import pandas as pd

    from autodl.tabular.data import read_table

    if not id_column:
        raise UserError("--task timeseries needs --id-column COLUMN naming each series' id")
    if not sort_column:
        raise UserError("--task timeseries needs --sort-column COLUMN ordering the observations")
    if not target:
        raise UserError("--task timeseries needs --target COLUMN (in --data, or in --labels)")
    df = read_table(path)
    for what, col in (("id", id_column), ("sort", sort_column)):
        if col not in df.columns:
            raise DataError(f"{what} column '{col}' is not in {path}; {_columns_hint(df)}")
    if labels is not None:
        lab = read_table(labels)
        for col in (id_column, target):
            if col not in lab.columns:
                raise DataError(f"column '{col}' is not in the labels table {labels}; {_columns_hint(lab)}")
        if lab[id_column].duplicated().any():
            raise DataError(f"the labels table {labels} has several rows for one id")
        y_by_id = lab.set_index(id_column)[target]
        df = df.drop(columns=[target], errors="ignore")
    else:
        if target not in df.columns:
            raise DataError(f"target column '{target}' is not in {path}; {_columns_hint(df)} "
                            "(or give --labels FILE with one target per id)")
        per_id = df.groupby(id_column)[target]
        if (per_id.nunique(dropna=False) > 1).any():
            raise DataError(f"target '{target}' changes within a series; it must be constant per "
                            f"{id_column} (or give --labels FILE with one target per id)")
        y_by_id = per_id.first()
        df = df.drop(columns=[target])
    values = [c for c in df.columns if c not in (id_column, sort_column)]
    if not values:
        raise DataError(f"{path} has no value columns besides '{id_column}' and '{sort_column}'")
    bad = [c for c in values if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise DataError(f"series value column(s) {', '.join(map(repr, bad))} are not numeric")
    df = df.sort_values([id_column, sort_column], kind="stable")
    step = df.groupby(id_column).cumcount()
    parts = []
    for col in values:
        wide = df.assign(__step=step).pivot(index=id_column, columns="__step", values=col)
        wide.columns = [f"{col}{SEP}{int(s)}" for s in wide.columns]
        parts.append(wide)
    X = pd.concat(parts, axis=1)
    ids = X.index
    known = ids.isin(y_by_id.index)
    if not known.all():
        raise DataError(f"{int((~known).sum())} series have no target (e.g. id {ids[~known][0]!r})")
    y = y_by_id.reindex(ids)
    keep = y.notna().to_numpy()
    X, y = X[keep].reset_index(drop=True), y[keep].reset_index(drop=True).rename(target)
    if len(X) < 4:
        raise DataError(f"only {len(X)} series with a target; need more to cross-validate")
    return X, y


def load_entityset(path: str | Path, target: str | None) -> tuple[Any, Any, dict[str, Any]]:
    """``(X, y, features)``: the target table without ``target``, the target, and the
    ``{"kind": "featuretools", ...}`` description of the related tables."""
    import yaml

    from autodl.tabular.data import read_table

    path = Path(path)
    if not path.is_file():
        raise DataError(f"entity set file {path} does not exist")
    try:
        desc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(desc, dict) or not isinstance(desc.get("tables"), dict) or not desc.get("target"):
        raise DataError(f"{path}: needs 'target: <table>' and 'tables: {{name: {{path, index}}}}'")
    unknown = set(desc) - {"target", "tables", "relationships", "max_depth", "agg_primitives",
                           "trans_primitives", "max_features"}
    if unknown:
        raise DataError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    name = desc["target"]
    if name not in desc["tables"]:
        raise DataError(f"{path}: target table '{name}' is not among tables: {', '.join(desc['tables'])}")
    if not target:
        raise UserError(f"--entityset needs --target COLUMN (a column of the '{name}' table)")
    tables = {}
    for tname, spec in desc["tables"].items():
        if not isinstance(spec, dict) or "path" not in spec or "index" not in spec:
            raise DataError(f"{path}: table '{tname}' needs 'path' and 'index'")
        extra = set(spec) - {"path", "index", "time_index", "parse_dates", "logical_types"}
        if extra:
            raise DataError(f"{path}: table '{tname}': unknown key(s) {', '.join(sorted(extra))}")
        file = (path.parent / spec["path"]).resolve()
        if not file.is_file():
            raise DataError(f"{path}: table '{tname}': file {file} does not exist")
        tables[tname] = {**spec, "path": str(file)}
    rels = desc.get("relationships") or []
    for rel in rels:
        if not isinstance(rel, (list, tuple)) or len(rel) != 4:
            raise DataError(f"{path}: relationship {rel!r} must be [parent, parent_column, child, child_column]")
        for t in (rel[0], rel[2]):
            if t not in tables:
                raise DataError(f"{path}: relationship {rel!r} names unknown table '{t}'")
    main = tables.pop(name)
    df = parse_dates(read_table(main["path"]), main)
    if target not in df.columns:
        raise DataError(f"target column '{target}' is not in table '{name}'; {_columns_hint(df)}")
    if main["index"] not in df.columns:
        raise DataError(f"index column '{main['index']}' is not in table '{name}'; {_columns_hint(df)}")
    df = df[df[target].notna()].reset_index(drop=True)
    y = df[target]
    X = df.drop(columns=[target])
    features = {"kind": "featuretools", "target": name, "index": main["index"],
                "time_index": main.get("time_index"), "relationships": [list(r) for r in rels],
                "tables": {t: {"data": s["path"], **{k: v for k, v in s.items() if k != "path"}}
                           for t, s in tables.items()}}
    for key in ("max_depth", "agg_primitives", "trans_primitives", "max_features"):
        if key in desc:
            features[key] = desc[key]
    return X, y, features


def parse_dates(df, spec: dict[str, Any]):
    """Parse a table's ``time_index`` and ``parse_dates`` columns as dates (when text)."""
    import pandas as pd

    cols = list(spec.get("parse_dates") or [])
    if spec.get("time_index"):
        cols.append(spec["time_index"])
    for col in cols:
        if col in df.columns and not pd.api.types.is_datetime64_any_dtype(df[col]) \
                and not pd.api.types.is_numeric_dtype(df[col]):
            try:
                df[col] = pd.to_datetime(df[col])
            except (ValueError, TypeError):
                raise DataError(f"column '{col}' does not hold dates") from None
    return df


__all__ = ["load_series", "load_entityset", "parse_dates", "SEP"]
