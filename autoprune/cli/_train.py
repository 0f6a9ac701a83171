"""Train-time pruning on the command line: ``autoprune train`` with ``--policy``.

Without ``--policy``, ``train`` trains (or loads from the cache) the task's dense
model (:mod:`autoprune.cli._model`). With it, the task's model is trained from a
seeded random initialisation while the policy's schedule prunes it
(:func:`autoprune.training.train_with_policy`), and the pruned model directory
is written the way ``apply`` writes it.

Example:
    $ autoprune train --policy policy.yaml --task digits-mlp --out pruned/
"""

from __future__ import annotations

import functools

from autoprune.cli._args import check_flag, task_from_args
from autoprune.errors import ParameterError

POLICY_ONLY = ("out", "lr", "overwrite")  # the flags that only train-time pruning takes


def cmd_train(args) -> int:
    from autoprune.apply import check_out, save_pruned
    from autoprune.budgets import measure_costs
    from autoprune.cli._production import _describe_task
    from autoprune.policy_file import load_policy
    from autoprune.training import evaluate, train_with_policy

    _check_policy_flags(args)
    document = load_policy(args.policy)  # validated before anything is computed or written
    check_out(args.out, overwrite=args.overwrite)
    task = task_from_args(args)
    epochs = task.epochs  # --epochs, when given, is the task's now
    lr = task.lr if args.lr is None else args.lr
    dense = measure_costs(task.new_model(), task.example_input, scope=task.cost_modules)
    outcome = train_with_policy(
        task, document, epochs=epochs, lr=lr, seed=args.seed, progress=not args.quiet
    )
    val = evaluate(outcome.model, task.val_data, task).metric
    test = evaluate(outcome.model, task.test_data, task).metric
    costs = measure_costs(
        outcome.model, task.example_input, scope=task.cost_modules, history=outcome.history
    )
    trained = {
        "from_scratch": True,
        "epochs": epochs,
        "lr": lr,
        "seed": args.seed,
        "steps": outcome.finetune_steps,
        "val_metric": val,
        "test_metric": test,
        "dense_params": dense.params,
        "dense_macs": dense.macs,
        "params": costs.params,
        "macs": costs.macs,
        "bytes": costs.bytes,
    }
    document.results = {**document.results, "trained": trained}
    _describe_task(document.provenance, task)
    out = save_pruned(
        outcome.model, args.out, document, history=outcome.history, overwrite=args.overwrite
    )
    _summarise(task, args.policy, document.policy.schedule.name, trained)
    print(f"  wrote {out / 'policy.yaml'} and {out / 'model.safetensors'}")
    return 0


def _summarise(task, policy_path: str, schedule: str, trained: dict) -> None:
    """The run, its metrics, the parameters and MACs before and after pruning."""
    metric = task.metric_name
    print(
        f"Trained {task.name} from scratch with {policy_path} ({schedule} schedule, "
        f"{trained['epochs']:g} epochs = {trained['steps']:,} steps, lr {trained['lr']:g}, "
        f"seed {trained['seed']}): validation {metric} {trained['val_metric']:.4f}, "
        f"test {metric} {trained['test_metric']:.4f}"
    )
    before, after = trained["dense_params"], trained["params"]
    print(
        f"  {before:,} params before, {after:,} non-zero after ({after / max(before, 1):.1%}); "
        f"{trained['dense_macs']:,} -> {trained['macs']:,} MACs, {trained['bytes']:,} bytes"
    )


def _check_policy_flags(args) -> None:
    """The flags of train-time pruning, checked before anything is loaded or trained."""
    from autoprune.training._from_scratch import EPOCHS, LR

    if not args.out:
        raise ParameterError(
            "--policy needs --out DIR: the directory the pruned model is written to."
        )
    if args.retrain:
        raise ParameterError(
            "--retrain goes without --policy: a policy's model is always trained anew. Leave it out."
        )
    for flag, value, constraint in (("epochs", args.epochs, EPOCHS), ("lr", args.lr, LR)):
        if value is not None:
            check_flag(flag, value, constraint)


def run_train(args, *, dense_command) -> int:
    """``train``: the policy's pruned model with ``--policy``, else the dense model."""
    if args.policy is not None:
        return cmd_train(args)
    given = [
        f"--{n}"
        for n in POLICY_ONLY
        if getattr(args, n) is not None and getattr(args, n) is not False
    ]
    if given:
        raise ParameterError(
            f"{' and '.join(given)} {'goes' if len(given) == 1 else 'go'} with --policy "
            "(train-time pruning); the dense model is cached. Add --policy POLICY or leave "
            f"{'it' if len(given) == 1 else 'them'} out."
        )
    return dense_command(args)


def add_policy_arguments(p) -> None:
    """Give the ``train`` parser (:mod:`autoprune.cli._model` builds it) ``--policy`` and its flags."""
    p.description = (
        "Train (or load from the cache) the dense model of a task; with --policy, train the "
        "task's model from scratch while the policy's schedule prunes it, and write the pruned "
        "model directory (as apply does)."
    )
    p.add_argument(
        "--policy",
        default=None,
        help="policy file (YAML or JSON): train its pruned model from scratch (train-time pruning)",
    )
    p.add_argument(
        "--out",
        default=None,
        help="with --policy: output directory, new, empty, or one train or apply wrote",
    )
    p.add_argument(
        "--lr",
        type=float,
        default=None,
        help="with --policy: learning rate (default: the task's training lr)",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="with --policy: write into an --out that holds other files (only policy.yaml and "
        "model.safetensors are replaced)",
    )
    p.set_defaults(func=functools.partial(run_train, dense_command=p.get_default("func")))
