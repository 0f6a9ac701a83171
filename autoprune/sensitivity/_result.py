"""What a sensitivity analysis yields, and what the search derives from it.

* :meth:`Sensitivity.ranking`: units from most to least sensitive (mean metric
  drop over the grid);
* :meth:`Sensitivity.caps`: per unit, the largest amount whose damage stays
  within a tolerance (linear interpolation between grid points);
* :meth:`Sensitivity.tiers`: units grouped by sensitivity (1-D k-means), so a
  search can use one dimension per tier;
* :meth:`Sensitivity.allowed_amount`: the amount a unit can take for a given
  damage, the basis of the sensitivity-proportional seed policy.

Example:
    >>> import pandas as pd
    >>> t = pd.DataFrame({"layer": ["a", "a", "b", "b"], "sparsity": [0.5, 0.9] * 2,
    ...                   "metric": [0.9, 0.5, 0.9, 0.89], "loss": [0.0] * 4, "error": [""] * 4})
    >>> t["drop"] = 0.9 - t["metric"]
    >>> s = Sensitivity(t, 0.9, 0.0, "l1", "unstructured", (0.5, 0.9), "accuracy", 0.0)
    >>> list(s.ranking().layer), s.caps(0.02)
    (['a', 'b'], {'a': 0.5, 'b': 0.9})
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from autoprune._validation import check_fraction, check_positive_int


@dataclass
class Sensitivity:
    """The tidy table (one row per unit and amount) and the dense reference."""

    table: pd.DataFrame
    dense_metric: float
    dense_loss: float
    criterion: str
    granularity: str
    grid: tuple[float, ...]
    metric_name: str
    seconds: float
    cached_points: int = 0
    total_points: int = 0

    @property
    def units(self) -> list[str]:
        return list(dict.fromkeys(self.table["layer"]))

    def curve(self, unit: str) -> tuple[np.ndarray, np.ndarray]:
        """(amounts, drops) of ``unit``, starting at (0, 0); a crashed point counts as total damage."""
        rows = self.table[self.table["layer"] == unit].sort_values("sparsity")
        drops = rows["drop"].to_numpy(dtype=float)
        drops = np.where(np.isnan(drops), np.inf, drops)
        return np.concatenate([[0.0], rows["sparsity"].to_numpy(float)]), np.concatenate(
            [[0.0], drops]
        )

    def ranking(self) -> pd.DataFrame:
        """Units from most to least sensitive: mean and max drop over the grid, failures counted."""
        rows = []
        for unit in self.units:
            part = self.table[self.table["layer"] == unit]
            failed = int((part["error"].fillna("") != "").sum())
            drops = part["drop"].fillna(self.dense_metric)  # a crash costs everything
            rows.append(
                {
                    "layer": unit,
                    "mean_drop": float(drops.mean()),
                    "max_drop": float(drops.max()),
                    "failed": failed,
                }
            )
        frame = pd.DataFrame(rows).sort_values(
            ["mean_drop", "layer"], ascending=[False, True], kind="stable"
        )
        frame.insert(0, "rank", range(1, len(frame) + 1))
        return frame.reset_index(drop=True)

    def damage(self, unit: str, amount: float) -> float:
        """The drop at ``amount`` on the monotone envelope of the curve, interpolated (a crash: 1e9)."""
        amounts, drops = self.curve(unit)
        envelope = np.nan_to_num(np.maximum.accumulate(drops), posinf=1e9)
        return float(np.interp(amount, amounts, envelope))

    def allowed_amount(self, unit: str, tolerance: float) -> float:
        """Largest amount with drop <= ``tolerance`` on the monotone envelope of the curve."""
        amounts, drops = self.curve(unit)
        envelope = np.maximum.accumulate(drops)  # damage never shrinks as more is pruned
        if envelope[-1] <= tolerance:
            return float(amounts[-1])
        first_over = int(np.argmax(envelope > tolerance))
        lo_a, hi_a = amounts[first_over - 1], amounts[first_over]
        lo_d, hi_d = envelope[first_over - 1], envelope[first_over]
        if not np.isfinite(hi_d) or hi_d <= lo_d:
            return float(lo_a)
        return float(lo_a + (hi_a - lo_a) * (tolerance - lo_d) / (hi_d - lo_d))

    def caps(self, tolerance: float = 0.02, *, interpolate: bool = False) -> dict[str, float]:
        """Per unit, the largest grid amount (or interpolated amount) costing at most ``tolerance``."""
        check_fraction("tolerance", tolerance, low=0.0, high=1.0, include_high=True)
        caps = {}
        for unit in self.units:
            if interpolate:
                caps[unit] = round(self.allowed_amount(unit, tolerance), 4)
                continue
            amounts, drops = self.curve(unit)
            envelope = np.maximum.accumulate(drops)
            caps[unit] = float(amounts[envelope <= tolerance].max())
        return caps

    def tiers(self, n_tiers: int = 3) -> dict[str, int]:
        """Units grouped by mean drop into at most ``n_tiers`` tiers; tier 0 is the most sensitive."""
        from sklearn.cluster import KMeans

        check_positive_int("n_tiers", n_tiers)
        ranking = self.ranking()
        scores = ranking["mean_drop"].to_numpy(float).reshape(-1, 1)
        k = min(n_tiers, len(np.unique(scores)))
        if k <= 1:
            return {unit: 0 for unit in ranking["layer"]}
        labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit_predict(scores)
        centre_order = {
            label: rank
            for rank, label in enumerate(
                np.argsort([-scores[labels == lab].mean() for lab in range(k)])
            )
        }
        return {
            unit: int(centre_order[label])
            for unit, label in zip(ranking["layer"], labels, strict=True)
        }

    # ------------------------------------------------------------------ files

    def save(self, out_dir: str | Path, *, tolerance: float = 0.02) -> dict[str, Path]:
        """Write ``sensitivity.csv``, ``ranking.csv`` (caps interpolated, as the search uses them) and ``sensitivity.png``."""
        from autoprune._io import write_text
        from autoprune.sensitivity._plot import plot_sensitivity

        out = Path(out_dir)
        ranking = self.ranking()
        caps, tiers = self.caps(tolerance, interpolate=True), self.tiers()
        ranking["cap"] = ranking["layer"].map(caps)
        ranking["tier"] = ranking["layer"].map(tiers)
        paths = {
            "table": out / "sensitivity.csv",
            "ranking": out / "ranking.csv",
            "plot": out / "sensitivity.png",
        }
        write_text(paths["table"], self.table.to_csv(index=False))
        write_text(paths["ranking"], ranking.to_csv(index=False))
        plot_sensitivity(self, paths["plot"])
        return paths

    def to_records(self) -> list[dict]:
        """The table as JSON-ready rows (NaN as None)."""
        return [
            {k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in row.items()}
            for row in self.table.to_dict(orient="records")
        ]

    @classmethod
    def from_records(
        cls,
        rows: list[dict],
        *,
        dense_metric: float,
        dense_loss: float = float("nan"),
        metric_name: str = "metric",
    ) -> Sensitivity:
        """Rebuild from :meth:`to_records` rows (or a CSV's rows)."""
        table = pd.DataFrame(rows)
        for column in ("metric", "loss", "drop", "achieved"):
            if column in table:
                table[column] = pd.to_numeric(table[column], errors="coerce")
        table["error"] = table["error"].fillna("") if "error" in table else ""
        grid = tuple(sorted(float(v) for v in table["sparsity"].unique()))
        return cls(
            table,
            dense_metric,
            dense_loss,
            str(table["criterion"].iloc[0]),
            str(table["granularity"].iloc[0]),
            grid,
            metric_name,
            0.0,
        )
