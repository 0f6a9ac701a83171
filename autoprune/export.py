"""Export a pruned model: TorchScript, ONNX (with the ``onnx`` extra), dynamic int8; parity checked.

Every exported file is loaded back and run on a fixed batch; the largest
absolute difference from the PyTorch model is reported and must stay within
``atol + rtol * max|output|`` for the exact formats (fp32 rounding grows with
the outputs' scale). Dynamic int8 quantization (linear layers)
comes on top of pruning; its outputs differ by design, so its metric is
reported instead. TorchScript and ``torch.ao`` dynamic quantization are
deprecated upstream in favour of ``torch.export`` and torchao; they still
work in the pinned torch and are what most serving stacks load today.

Example:
    >>> import tempfile, torch
    >>> from autoprune.tasks.models import DigitsMLP
    >>> rows = export_model(DigitsMLP(), torch.zeros(1, 64), tempfile.mkdtemp(), formats=("torchscript",))
    >>> rows[0]["format"], rows[0]["parity"]
    ('torchscript', True)
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from autoprune.errors import AutopruneError

FORMATS = ("torchscript", "onnx")
# Every file export_model writes in its directory (see export_file).
EXPORT_FILES = ("model.pt", "model.onnx", "model.int8.pt")


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _parity_batch(example_input: torch.Tensor, n: int = 8) -> torch.Tensor:
    """Seeded noise for float inputs; the example repeated for integer inputs (token ids)."""
    if not example_input.is_floating_point():
        return example_input[:1].repeat(n, *([1] * (example_input.dim() - 1)))
    shape = (n, *example_input.shape[1:])
    return torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=example_input.dtype)


def to_torchscript(model: nn.Module, example_input: torch.Tensor, path: Path) -> nn.Module:
    """Trace ``model`` to TorchScript at ``path``; returns the loaded file."""
    from autoprune._io import atomic_path

    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(model.eval(), _parity_batch(example_input))
        with atomic_path(path) as tmp:
            torch.jit.save(traced, str(tmp))
        return torch.jit.load(str(path))


def to_onnx(model: nn.Module, example_input: torch.Tensor, path: Path):
    """Export ``model`` to ONNX at ``path`` (dynamic batch); returns an onnxruntime session."""
    try:
        import onnxruntime
    except ImportError as exc:
        raise AutopruneError(
            "ONNX export needs the 'onnx' extra: pip install 'autoprune[onnx]'."
        ) from exc
    import logging

    from autoprune._io import atomic_path

    logging.getLogger("torch.onnx").setLevel(logging.ERROR)
    with _quiet(), contextlib.redirect_stdout(None), atomic_path(path) as tmp:
        torch.onnx.export(
            model.eval(),
            (_parity_batch(example_input),),
            str(tmp),
            dynamo=True,
            external_data=False,
            input_names=["input"],
            output_names=["output"],
            dynamic_shapes=({0: torch.export.Dim("batch")},),
            verbose=False,
        )
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def quantize_int8(model: nn.Module) -> nn.Module:
    """Dynamic int8 quantization of the linear layers (weights int8, activations quantized on the fly)."""
    import copy

    with _quiet():
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(model).eval(), {nn.Linear}, dtype=torch.qint8
        )


def export_file(fmt: str, precision: str) -> str:
    """The name of the file a format and precision are written to (one of :data:`EXPORT_FILES`)."""
    return (
        f"model{'' if precision == 'fp32' else '.int8'}.{'pt' if fmt == 'torchscript' else 'onnx'}"
    )


def check_export_out(out_dir: str | Path, *, overwrite: bool = False) -> Path:
    """``out_dir`` as a Path if export may write there, else AutopruneError saying why.

    As for a pruned model (:func:`autoprune.apply.check_out`): a new or empty
    directory, or one holding only an earlier export's files (:data:`EXPORT_FILES`);
    with ``overwrite``, any directory, where only those files are replaced. A file
    or link at ``out_dir`` or at one of those names is never replaced.
    """
    from autoprune.apply import check_out

    return check_out(
        out_dir, overwrite=overwrite, names=EXPORT_FILES, staging=False, writer="autoprune export"
    )


@dataclass(frozen=True)
class ParityCheck:
    """How an exported file's outputs are compared with PyTorch's on a fixed batch.

    An exact (fp32) format passes when its largest absolute difference is at most
    ``atol + rtol * max|reference|`` (the PyTorch outputs' largest magnitude);
    ``strict`` raises on a failure, else the row says ``parity: False``.

    Example:
        >>> ParityCheck().atol, round(ParityCheck().tolerance(torch.tensor([5000.0])), 6), ParityCheck(strict=False).strict
        (0.0001, 0.0501, False)
    """

    atol: float = 1e-4
    rtol: float = 1e-5
    strict: bool = True

    def tolerance(self, reference: torch.Tensor) -> float:
        """The largest difference allowed from ``reference`` outputs."""
        return (
            self.atol + self.rtol * float(reference.abs().max()) if reference.numel() else self.atol
        )


def export_model(
    model: nn.Module,
    example_input: torch.Tensor,
    out_dir: str | Path,
    *,
    formats=FORMATS,
    quantize: bool = False,
    metric=None,
    parity: ParityCheck | None = None,
    overwrite: bool = False,
) -> list[dict]:
    """Export ``model`` in each format (and int8 variants); one report row per file.

    ``metric`` (a callable model -> float) adds each variant's metric to its row.
    A model with non-finite weights is refused. When an exact format's outputs differ
    from PyTorch by more than ``parity.atol`` (or are not finite), raises; with
    ``ParityCheck(strict=False)`` its row says ``parity: False`` instead and the export
    goes on. ``out_dir`` must be new, empty or an earlier export's; ``overwrite`` allows
    any directory, where only :data:`EXPORT_FILES` are replaced (:func:`check_export_out`).
    """
    from autoprune.apply import check_finite

    parity = parity or ParityCheck()
    out = check_export_out(out_dir, overwrite=overwrite)
    check_finite(model, error=AutopruneError)
    out.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    batch = _parity_batch(example_input)
    with torch.no_grad():
        reference = model(batch)
    rows = []
    variants = [("fp32", model)] + ([("int8-dynamic", quantize_int8(model))] if quantize else [])
    for precision, variant in variants:
        for fmt in formats:
            if fmt not in FORMATS:
                raise AutopruneError(
                    f"Unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}."
                )
            if fmt == "onnx" and precision != "fp32":
                continue  # dynamically quantized modules do not export to ONNX
            path = out / export_file(fmt, precision)
            run = _write(fmt, variant, example_input, path)
            with torch.no_grad():
                output = run(batch)
            diff = float((output - reference).abs().max())
            row = _row(fmt, precision, path, diff, parity.tolerance(reference), parity.strict)
            if metric is not None:
                row["metric"] = metric(run)
            rows.append(row)
    return rows


def _write(fmt: str, model: nn.Module, example_input: torch.Tensor, path: Path):
    """Write ``model`` in ``fmt`` at ``path``; returns the loaded file as a callable (tensor in, tensor out)."""
    if fmt == "torchscript":
        return to_torchscript(model, example_input, path)
    session = to_onnx(model, example_input, path)

    def run(x, session=session):
        return torch.from_numpy(session.run(None, {"input": x.numpy()})[0])

    return run


def _row(fmt: str, precision: str, path: Path, diff: float, tolerance: float, strict: bool) -> dict:
    """The report row of one exported file; a strict parity failure of an exact format raises."""
    exact = precision == "fp32"
    if strict and exact and not diff <= tolerance:  # NaN compares false both ways
        raise AutopruneError(
            f"{fmt} export of the model differs from PyTorch by {diff:.3g} > {tolerance:.3g}."
        )
    return {
        "format": fmt,
        "precision": precision,
        "file": str(path),
        "bytes": path.stat().st_size,
        "max_abs_diff": diff,
        "parity": (diff <= tolerance) if exact else "n/a (int8)",
    }
