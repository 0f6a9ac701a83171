"""Commands of the production path: apply a policy, export a pruned model."""

from __future__ import annotations

from autoprune._table import format_table
from autoprune.cli._args import (
    add_task_arguments,
    task_from_args,
)


def cmd_apply(args) -> int:
    import copy
    from dataclasses import replace
    from pathlib import Path

    from autoprune.apply import check_finite, check_out, save_pruned
    from autoprune.budgets import measure_costs
    from autoprune.policy_file import check_fingerprint, load_policy
    from autoprune.training import dense_model, evaluate, finetune_policy

    document = load_policy(args.policy)  # validated before anything is computed or written
    check_out(args.out, overwrite=args.overwrite)
    task = task_from_args(args)
    if args.checkpoint:
        task = replace(task, checkpoint=Path(args.checkpoint))
    dense = dense_model(task, seed=args.seed, progress=not args.quiet)
    if document.fingerprint:
        check_fingerprint(document.fingerprint, dense.model)
    check_finite(dense.model, what=f"The checkpoint {args.checkpoint or dense.info.get('path')}")
    policy = document.policy
    epochs = None if args.finetune else 0
    outcome = finetune_policy(
        copy.deepcopy(dense.model),
        policy,
        task,
        dense=dense.model,
        epochs=epochs,
        progress=not args.quiet,
    )
    val = evaluate(outcome.model, task.val_data, task).metric
    test = evaluate(outcome.model, task.test_data, task).metric
    costs = measure_costs(
        outcome.model, task.example_input, scope=task.cost_modules, history=outcome.history
    )
    document.results = {
        **document.results,
        "applied": {
            "checkpoint": str(args.checkpoint or dense.info.get("path")),
            "finetuned": bool(args.finetune),
            "val_metric": val,
            "test_metric": test,
            "params": costs.params,
            "macs": costs.macs,
            "bytes": costs.bytes,
        },
    }
    _describe_task(document.provenance, task)
    out = save_pruned(
        outcome.model, args.out, document, history=outcome.history, overwrite=args.overwrite
    )
    metric = task.metric_name
    print(
        f"Applied {args.policy} to {task.name} ({'fine-tuned' if args.finetune else 'pruned only'}): "
        f"validation {metric} {val:.4f}, test {metric} {test:.4f} (dense test {dense.info['test_metric']:.4f})"
    )
    print(
        f"  {costs.params:,} non-zero params, {costs.macs:,} MACs, {(out / 'model.safetensors').stat().st_size:,} bytes on disk"
    )
    print(f"  wrote {out / 'policy.yaml'} and {out / 'model.safetensors'}")
    return 0


def _describe_task(provenance: dict, task) -> None:
    """Record the task's own builder and input in ``provenance``, replacing whatever the input file said."""
    from autoprune.apply import builder_path

    builder = builder_path(task.build_model)
    if builder:
        provenance["builder"] = builder
    else:  # a builder that cannot be imported by name: load with build_model=
        provenance.pop("builder", None)
    provenance["input_shape"] = list(task.example_input.shape)
    provenance["input_dtype"] = str(task.example_input.dtype).removeprefix("torch.")


def cmd_export(args) -> int:
    from pathlib import Path

    from autoprune.apply import load_pruned
    from autoprune.export import ParityCheck, check_export_out, export_model

    check_export_out(args.out, overwrite=args.overwrite)  # before anything is loaded or written
    task = task_from_args(args) if args.task else None
    model = load_pruned(
        args.model_dir,
        build_model=task.build_model if task else None,
        example_input=task.example_input if task else None,
    )
    example = task.example_input if task else _example_from_policy(args.model_dir)
    kept = _reduced(model, args) if args.reduce_inputs else None
    if kept is not None:
        example = example[:, list(kept)]
    metric = _test_metric(task, kept) if task is not None else None
    rows = export_model(
        model,
        example,
        Path(args.out),
        formats=args.format or ["torchscript"],
        quantize=args.quantize,
        metric=metric,
        parity=ParityCheck(strict=False),
        overwrite=args.overwrite,
    )
    if metric is not None:
        rows.insert(0, _pytorch_row(Path(args.model_dir), _Columns(model, kept), task))
    print(format_table(rows))
    _refuse_failed(rows)
    return 0


def _reduced(model, args) -> tuple[int, ...]:
    """``model`` made to take only the input features its policy keeps; their indices."""
    from autoprune.errors import AutopruneError
    from autoprune.prune.inputs import reduce_inputs

    kept = reduce_inputs(model)
    if not kept:
        raise AutopruneError(
            f"--reduce-inputs: the model in {args.model_dir} reads every input feature (its policy "
            "has no 'inputs'), so there is nothing to reduce."
        )
    print(
        f"The exported model takes input features {', '.join(map(str, kept))} only, in that order."
    )
    return kept


def _Columns(run, kept: tuple[int, ...] | None):
    """A module running ``run`` (a model or an exported file's callable, tensor in, tensor out)
    on the input columns ``kept`` only (all of them when None)."""
    import torch

    class Columns(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.run = run

        def forward(self, x):
            return self.run(x if kept is None else x[:, list(kept)])

    return Columns()


def _test_metric(task, kept: tuple[int, ...] | None = None):
    """The task's test metric of an exported file's callable (tensor in, tensor out), fed the
    input columns ``kept`` only when given."""
    from autoprune.training import evaluate

    def metric(run):
        return evaluate(_Columns(run, kept), task.test_data, task).metric

    return metric


def _pytorch_row(model_dir, model, task) -> dict:
    """The export table's row of the pruned model itself, as loaded from ``model_dir``."""
    from autoprune.training import evaluate

    return {
        "format": "pytorch",
        "precision": "fp32",
        "file": str(model_dir / "model.safetensors"),
        "bytes": (model_dir / "model.safetensors").stat().st_size,
        "max_abs_diff": 0.0,
        "parity": True,
        "metric": evaluate(model, task.test_data, task).metric,
    }


def _refuse_failed(rows: list[dict]) -> None:
    """An AutopruneError naming the first exported file whose outputs differ from PyTorch."""
    failed = [row for row in rows if row["parity"] is False]
    if failed:
        from autoprune.errors import AutopruneError

        raise AutopruneError(
            f"{failed[0]['format']} {failed[0]['precision']} export of the model differs from PyTorch "
            f"(largest difference {failed[0]['max_abs_diff']:.3g}); do not use {failed[0]['file']}."
        )


def _example_from_policy(model_dir):
    from pathlib import Path

    from autoprune.apply import example_from
    from autoprune.policy_file import load_policy

    return example_from(load_policy(Path(model_dir) / "policy.yaml"))


def register(sub) -> None:
    """Add this module's commands to the ``autoprune`` parser."""
    _register_apply(sub)
    _register_export(sub)


def _register_apply(sub) -> None:
    """The ``apply`` command."""
    p = sub.add_parser(
        "apply", help="apply a policy file to a dense checkpoint and write the pruned model"
    )
    p.add_argument("policy", help="policy file (YAML or JSON)")
    add_task_arguments(p)
    p.add_argument(
        "--checkpoint",
        default=None,
        help="state_dict of the dense model (default: the cached dense model)",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the dense model trained or taken from the cache (default 0)",
    )
    p.add_argument(
        "--finetune", action="store_true", help="fine-tune with the policy's recipe and schedule"
    )
    p.add_argument(
        "--out",
        required=True,
        help="output directory: new, empty, or one apply wrote before",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an --out that holds other files (only policy.yaml and model.safetensors are replaced)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_apply)


def _register_export(sub) -> None:
    """The ``export`` command."""
    p = sub.add_parser("export", help="export a pruned model directory: TorchScript, ONNX, int8")
    p.add_argument(
        "model_dir", help="a directory written by apply or search (policy.yaml + model.safetensors)"
    )
    p.add_argument(
        "--format",
        action="append",
        choices=["torchscript", "onnx"],
        help="repeatable (default torchscript)",
    )
    p.add_argument("--quantize", action="store_true", help="also export dynamic int8 variants")
    p.add_argument(
        "--reduce-inputs",
        action="store_true",
        help="a model whose policy keeps some input features takes only those, in order "
        "(x[:, kept]); by default it takes the whole input and reads only those",
    )
    p.add_argument(
        "--task",
        default=None,
        help="task: its model builder rebuilds the model (needed for a builder that is not "
        "built in or trusted) and each variant's test metric is reported",
    )
    p.add_argument("--task-option", action="append", metavar="KEY=VALUE")
    p.add_argument(
        "--out",
        required=True,
        help="output directory: new, empty, or one export wrote before",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="write into an --out that holds other files (only model.pt, model.onnx and "
        "model.int8.pt are replaced)",
    )
    p.set_defaults(func=cmd_export)
