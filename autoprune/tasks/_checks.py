"""Up-front checks of a task's data against its model, loss and labels.

Run once, when a task's data are first used (:func:`autoprune.training.dense_model`),
so that data the model cannot read, NaN values, labels out of range or a model
that fails in training mode stop with one :class:`TaskError` naming the split,
instead of a traceback minutes into training. Tensor splits are checked whole
(a vectorised pass); other Datasets by their first batch.

:func:`check_model_runs` checks a freshly built model runs on the task's
``example_input`` (in eval mode), before anything else uses it.

Example:
    >>> import torch, autoprune
    >>> x, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    >>> y[5] = 7
    >>> task = autoprune.Task(name="toy", build_model=lambda: torch.nn.Linear(4, 3),
    ...                       train_data=(x, y), test_data=(x, y), val_data=(x, y))
    >>> check_task_data(task, task.new_model())
    Traceback (most recent call last):
    ...
    autoprune.errors.TaskError: The labels of the train_data of task 'toy' must be class indices in [0, 2] (the model has 3 outputs); item 5 has label 7.
"""

from __future__ import annotations

import torch
from torch import nn

from autoprune._validation import shorten
from autoprune.errors import TaskError
from autoprune.tasks._data import _tensors_of, iterate_batches

SPLITS = ("train_data", "val_data", "test_data")
CHECK_BATCH = 16  # items of each split run through the model


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {shorten(' '.join(str(exc).split()), text=True)}"


def _tensors_or_first_batch(task, field: str) -> tuple:
    """The whole split of a tensor Dataset, else its first batch."""
    data = getattr(task, field)
    tensors = _tensors_of(data)
    if tensors is not None:
        return tensors
    try:
        inputs, targets = next(iter(iterate_batches(data, batch_size=CHECK_BATCH)))
    except Exception as exc:  # the user's Dataset
        raise TaskError(
            f"Reading the first batch of the {field} of task '{task.name}' failed: {_reason(exc)}. "
            "Its items must be (input, target) pairs of tensors."
        ) from exc
    return inputs, targets


def _check_finite(task, field: str, inputs, targets) -> None:
    for what, values in (("inputs", inputs), ("targets", targets)):
        if not (isinstance(values, torch.Tensor) and values.is_floating_point()):
            continue
        bad = ~torch.isfinite(values)
        if bad.any():
            item = int(bad.reshape(len(values), -1).any(dim=1).nonzero()[0, 0])
            raise TaskError(
                f"The {field} of task '{task.name}' holds NaN or infinite values in its {what} "
                f"(item {item} is the first); clean or impute the data before handing it to autoprune."
            )


def _run(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    from autoprune._device import model_device

    with torch.no_grad():
        return model(inputs.to(model_device(model)))


def _check_forward(task, model: nn.Module, field: str, inputs: torch.Tensor) -> torch.Tensor:
    """The model's outputs on ``inputs`` in eval mode (the mode is restored)."""
    was_training = model.training
    model.eval()
    try:
        return _run(model, inputs)
    except Exception as exc:  # user code: report it in one line, naming the split
        raise TaskError(
            f"The model of task '{task.name}' does not run on the first batch of its {field} "
            f"(inputs of shape {tuple(inputs.shape)}, {str(inputs.dtype).removeprefix('torch.')}; "
            f"example_input has shape {tuple(task.example_input.shape)}): {_reason(exc)}. "
            "The data's inputs must have the shape and type of example_input."
        ) from exc
    finally:
        model.train(was_training)


def _check_train_mode(task, model: nn.Module, inputs: torch.Tensor) -> None:
    """Run one batch in training mode, leaving the model's buffers and the RNG as they were."""
    buffers = {name: b.detach().clone() for name, b in model.named_buffers()}
    was_training = model.training
    model.train()
    try:
        with torch.random.fork_rng(devices=[]):
            _run(model, inputs)
    except Exception as exc:
        raise TaskError(
            f"The model of task '{task.name}' fails in training mode (model.train()) on the first "
            f"batch of its train_data: {_reason(exc)}. autoprune trains and fine-tunes the model: "
            "its forward must work in training mode too."
        ) from exc
    finally:
        model.train(was_training)
        with torch.no_grad():
            for name, b in model.named_buffers():
                b.copy_(buffers[name])


def _check_labels(task, field: str, targets: torch.Tensor, outputs: torch.Tensor) -> None:
    """Class labels for a cross-entropy (or NLL) loss: integers in [0, classes)."""
    if not isinstance(task.loss, (nn.CrossEntropyLoss, nn.NLLLoss)) or outputs.dim() < 2:
        return
    if not isinstance(targets, torch.Tensor):
        return
    classes = outputs.shape[1]
    if targets.is_floating_point() and tuple(targets.shape[1:]) == tuple(outputs.shape[1:]):
        return  # class probabilities, as CrossEntropyLoss accepts them
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise TaskError(
            f"The labels of the {field} of task '{task.name}' are "
            f"{str(targets.dtype).removeprefix('torch.')}, but its loss "
            f"({type(task.loss).__name__}) needs integer class indices: convert them with "
            "y.long() (or give class probabilities shaped like the model's outputs)."
        )
    labels = targets.reshape(len(targets), -1)
    wrong = (labels != task.loss.ignore_index) & ((labels < 0) | (labels >= classes))
    if wrong.any():
        item = int(wrong.any(dim=1).nonzero()[0, 0])
        label = int(labels[item][wrong[item]][0])
        raise TaskError(
            f"The labels of the {field} of task '{task.name}' must be class indices in "
            f"[0, {classes - 1}] (the model has {classes} outputs); item {item} has label {label}."
        )


def _check_loss(task, outputs: torch.Tensor, targets: torch.Tensor) -> None:
    try:
        with torch.no_grad():
            loss = task.loss(outputs, targets.to(outputs.device))
    except Exception as exc:  # user code (the loss, or labels it cannot take)
        raise TaskError(
            f"The loss of task '{task.name}' fails on the first batch of its train_data "
            f"(outputs of shape {tuple(outputs.shape)}, targets of shape {tuple(targets.shape)}, "
            f"{str(targets.dtype).removeprefix('torch.')}): {_reason(exc)}."
        ) from exc
    if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
        raise TaskError(
            f"The loss of task '{task.name}' must return a tensor with one element (the mean loss). "
            f"Got {shorten(loss)} instead."
        )
    if not torch.isfinite(loss).all():
        raise TaskError(
            f"The loss of task '{task.name}' is {float(loss)} on the first batch of its train_data, "
            "before any training: check the loss function and the data."
        )


def check_task_data(task, model: nn.Module) -> None:
    """Raise :class:`TaskError` if ``task``'s splits cannot train and evaluate ``model``."""
    first = {}
    for field in SPLITS:
        inputs, targets = _tensors_or_first_batch(task, field)
        _check_finite(task, field, inputs, targets)
        if not isinstance(inputs, torch.Tensor):  # a Dataset of other things: the model's business
            continue
        outputs = _check_forward(task, model, field, inputs[:CHECK_BATCH])
        _check_labels(task, field, targets, outputs)
        first[field] = (inputs[:CHECK_BATCH], outputs, targets[:CHECK_BATCH])
    if "train_data" not in first:
        return
    inputs, outputs, targets = first["train_data"]
    has_norm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())
    if len(inputs) > 1 or not has_norm:  # batch norm cannot train on a single item
        _check_train_mode(task, model, inputs)
    if isinstance(targets, torch.Tensor):
        _check_loss(task, outputs, targets)


def check_model_runs(
    model: nn.Module, example_input: torch.Tensor, *, context: str
) -> torch.Tensor:
    """Run ``model`` on ``example_input`` in eval mode; raise TaskError if it fails."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return model(example_input)
    except Exception as exc:
        raise TaskError(
            f"The model of {context} does not run on its example_input of shape "
            f"{tuple(example_input.shape)}: {type(exc).__name__}: {shorten(' '.join(str(exc).split()), text=True)}. "
            "Fix example_input (it needs a batch dimension) or the model."
        ) from exc
    finally:
        model.train(was_training)
