"""The sentences under the final model's table: a fair dense reference, costs that save no time, structure.

* A final model scoring above the dense model is not credited to pruning: the
  run fine-tuned no dense model with the same final recipe, so the report says
  how many more epochs the pruned model was trained (:func:`dense_reference_text`).
* A model smaller on disk but no faster says why (:data:`SPARSE_NOT_FASTER`).
* When the run tried structured policies, the best feasible one stands beside
  the pick with the command that makes it a final model (:func:`structured_text`).

Example:
    >>> epochs_text(5, 3.0)
    'trained for 5 epochs; the pruned model had 3 more epochs of fine-tuning'
"""

from __future__ import annotations

import math

from autoprune.report._data import ReportData
from autoprune.report._front import pick_command
from autoprune.report._render import Text

SPARSE_NOT_FASTER = (
    "Sparse weights make the model smaller on disk but not faster: dense kernels still run every "
    "multiply. For speed, prune structurally (e.g. `--space structured`)."
)
NOT_CREDITED = "No dense model was given the same final fine-tuning, so the difference is not credited to pruning."


def _epochs(value: float, more: str = "") -> str:
    return f"{value:g} {more}epoch{'' if value == 1 else 's'}"


def epochs_text(dense_epochs: float | None, final_epochs: float) -> str:
    """How long each model was trained, in the words of the dense reference."""
    dense = "trained elsewhere" if dense_epochs is None else f"trained for {_epochs(dense_epochs)}"
    return f"{dense}; the pruned model had {_epochs(final_epochs, 'more ')} of fine-tuning"


def dense_reference_text(data: ReportData) -> Text | None:
    """Each metric the final model scores above the dense model on, worded without claiming a gain."""
    names = {"test_metric": "test", "val_metric": "validation"}
    better = [row for row in data.comparison if row.quantity in names and (row.difference or 0) > 0]
    if not better or data.final is None:
        return None
    parts = [
        f"{names[row.quantity]} {data.run.metric} {row.final:.4f} is within {row.difference:.4f} "
        f"of the dense model's {row.dense:.4f}"
        for row in better
    ]
    trained = epochs_text(data.run.dense_epochs, data.final.final_epochs)
    text = f"The final model's {' and '.join(parts)} (the dense model {trained}). {NOT_CREDITED}"
    return Text(text)


def _share(value, dense) -> str:
    if not dense or value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f" ({value / dense:.1%} of dense)"


def structured_text(data: ReportData) -> Text | None:
    """The best feasible structured trial beside the pick, with the command that picks it."""
    row, final = data.structured, data.final
    if row is None or final is None:
        return None
    number = int(row["number"])
    if number == final.chosen_trial:
        return Text(f"The pick, trial {number}, is also the run's best structured candidate.")
    kind = "fine-tuned" if row["fidelity"] == "recovered" else "one-shot, not fine-tuned"
    dense = data.run.dense_costs
    costs = ", ".join(
        f"{row[column]:,.0f} {name}{_share(row[column], dense.get(column))}"
        for column, name in (("params", "parameters"), ("macs", "MACs"))
        if column in row and row[column] == row[column]
    )
    return Text(
        f"Best structured candidate: trial {number} ({kind}), validation {data.run.metric} "
        f"{row['val_metric']:.4f} at cost / limit {row['cost']:.4f}"
        + (f", {costs}" if costs else "")
        + f"; the pick, trial {final.chosen_trial}, reached validation {data.run.metric} "
        f"{final.chosen.search_val_metric:.4f} at cost / limit {final.chosen.cost:.4f} in the search. "
        "Whole channels removed lower the MACs dense kernels run, which is what makes a model "
        f"faster; make it the final model with `{pick_command(data.run_dir, number)}`."
    )


def cost_notes(data: ReportData) -> list:
    """The sentences that belong under the final model's table, in order (none may apply)."""
    notes = [dense_reference_text(data)]
    if data.sparse_not_faster:
        notes.append(Text(SPARSE_NOT_FASTER))
    notes.append(structured_text(data))
    return [note for note in notes if note is not None]
