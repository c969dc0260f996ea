"""Open one service for analysis: its config, prepared data, reference data and rule.

Every notebook starts with :func:`open_service`. Under the workbook runner the extract
has already been prepared once and its path is passed in; in the book and in
JupyterLab the prepared file is built on first use and reused while the config,
extract and reference files are unchanged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd

from .config import ServiceConfig, load_config, resolve_path
from .extract import read_prepared
from .preparation import prepare_to_file
from .privacy import DisclosureRule, export_table
from .reference import (
    catchment_lsoas,
    load_imd,
    load_population_age,
    load_population_ethnicity,
    load_population_sex,
)

log = logging.getLogger("equity_helpers")


@dataclass
class Service:
    """A service ready for analysis."""

    cfg: ServiceConfig
    meta: dict
    prepared_path: Path
    output_dir: Path | None = None
    _exports: list = field(default_factory=list)
    #: The steps this service object worked out itself (not handed over by the runner).
    computed_steps: list = field(default_factory=list)
    #: The only prepared columns to read (None: every one). The workbook runner names
    #: those its step reads (:func:`equity_helpers.steps.columns_for`).
    columns: list[str] | None = None
    _data: pd.DataFrame | None = field(default=None, repr=False)
    _when_read: list = field(default_factory=list, repr=False)

    @property
    def data(self) -> pd.DataFrame:
        """The prepared rows, read from the prepared file when first asked for.

        A notebook handed its step's results by the workbook runner never asks, so its
        kernel does not hold a copy of a big extract.
        """
        if self._data is None:
            data, _ = read_prepared(self.prepared_path, columns=self.columns)
            for change in self._when_read:
                data = change(data)
            self._data = data
        return self._data

    def when_read(self, change) -> None:
        """Change the rows (``data = change(data)``): now if they are read, else once read.

        So a step that needs no rows (the readability of letters, say) reads none.
        """
        if self._data is None:
            self._when_read.append(change)
        else:
            self._data = change(self._data)

    @data.setter
    def data(self, value: pd.DataFrame) -> None:
        self._data = value

    @property
    def rule(self) -> DisclosureRule:
        return self.cfg.disclosure

    @property
    def name(self) -> str:
        return self.cfg.service_name

    @property
    def account(self) -> dict:
        return self.meta["account"]

    @cached_property
    def imd(self) -> pd.DataFrame:
        """Deprivation of every LSOA in the catchment."""
        imd = load_imd(self.cfg.imd_path, self.cfg.imd_edition)
        return catchment_lsoas(imd, self.cfg.catchment_lads)

    @cached_property
    def catchment(self) -> pd.DataFrame:
        """The catchment's population by LSOA (all the files the config gives), with IMD."""
        out = self.imd[["lsoa_code", "lad_code", "imd_decile", "imd_quintile", "core20"]].copy()
        for path, loader in (
            (self.cfg.population_ethnicity, load_population_ethnicity),
            (self.cfg.population_age, load_population_age),
            (self.cfg.population_sex, load_population_sex),
        ):
            if path is not None:
                out = out.merge(loader(path), on="lsoa_code", how="left")
        return out

    def has_population(self, dimension: str) -> bool:
        paths = {
            "ethnic_group": self.cfg.population_ethnicity,
            "age_group": self.cfg.population_age,
            "sex_label": self.cfg.population_sex,
            "imd_quintile": self.cfg.population_ethnicity,
            "imd_decile": self.cfg.population_ethnicity,
        }
        return paths.get(dimension) is not None

    def export(self, name: str, table, title: str, label_columns=()) -> None:
        """Write a controlled summary table as CSV and XLSX when an output folder is set.

        Raw counts kept for further statistics (columns starting with ``_``) are never
        written. Text columns are labels; name any numeric label columns (such as a decile
        number) in ``label_columns`` so the small-number check does not mistake them.
        """
        if self.output_dir is None:
            return
        self.output_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(table, pd.DataFrame):
            table = table[[c for c in table.columns if not str(c).startswith("_")]]
            if table.index.name is None and pd.api.types.is_integer_dtype(table.index):
                table = table.reset_index(drop=True)  # a leftover row position, not a label
            labels = [c for c in table.columns if not pd.api.types.is_numeric_dtype(table[c])]
            label_columns = list(dict.fromkeys([*label_columns, *labels]))
        export_table(
            table,
            self.output_dir / f"{name}.csv",
            self.output_dir / f"{name}.xlsx",
            self.rule,
            title,
            label_columns=label_columns,
        )
        self._exports.append(name)


def open_service(
    config_path: str | Path,
    prepared_path: str | Path | None = "",
    output_dir: str | Path | None = "",
    results_path: str | Path | None = "",
) -> Service:
    """Load a service's config and prepared data (preparing it if needed).

    Parameters
    ----------
    config_path : str or Path
        The service config. Relative paths are looked for from the current folder upwards,
        so the same default works from the repository root and from ``notebooks/``.
    prepared_path : str or Path, optional
        A prepared Parquet file made by the workbook runner. Blank: prepare (or reuse) here.
    output_dir : str or Path, optional
        Where summary tables are written. Blank: tables are shown, not written.
    results_path : str or Path, optional
        The step results the workbook runner worked out once for this run. Blank: each
        step is worked out here when the notebook asks for it.
    """
    cfg = load_config(resolve_path(config_path))
    if prepared_path:
        path = Path(prepared_path)
    else:
        path, _ = prepare_to_file(cfg)
    _, meta = read_prepared(path, columns=[])  # the rows are read when first needed
    service = Service(
        cfg=cfg,
        meta=meta,
        prepared_path=path,
        output_dir=Path(output_dir) if output_dir else None,
    )
    if results_path and Path(results_path).is_file():
        from .steps.base import load_results

        load_results(service, results_path)
    return service
