"""The zoo: every torchvision classification model and the Hugging Face families, end to end.

Each model, built with random weights on a small input, goes through the steps
a user's model goes through: *inspect* (prunable layers, parameters, MACs),
*units* (its structured units, timed), *prune* (half of every unit group
removed by applying a structured policy), *forward* (the pruned model runs and
gives outputs of the dense model's shape), *reload* (``save_pruned`` then
``load_pruned`` through the history replay: outputs equal to the pruned
model's) and *onnx* (export with a parity check). A step that fails is
recorded with its reason and the later steps are skipped; each model runs
under a time limit, so the run never hangs. Results go to
``results/zoo/zoo.csv`` and ``zoo.md`` with the commit they ran at.

    python -m benchmarks.zoo [--only NAME ...] [--family torchvision|huggingface] [--out DIR]
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from benchmarks._common import code_commit

STEPS = ("inspect", "units", "prune", "forward", "reload", "onnx")
SIZES = (64, 96, 128, 160, 224)  # input sides tried, smallest first
MODEL_SECONDS = 1800.0  # the longest one model may take through every step


@dataclass(frozen=True)
class ZooModel:
    """A model of the zoo: how to build it (random weights) and an example input."""

    name: str
    family: str
    build: Callable[[], nn.Module]
    example: Callable[[], torch.Tensor]


@dataclass
class ZooResult:
    """What happened to one model: each step's outcome, units by kind, sizes, seconds."""

    name: str
    family: str
    input_shape: tuple = ()
    units: dict[str, int] = field(default_factory=dict)
    params_before: int = 0
    params_after: int = 0
    discovery_seconds: float = 0.0
    seconds: float = 0.0
    steps: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    commit: str = ""

    @property
    def passed(self) -> bool:
        return all(self.steps.get(step) == "ok" for step in STEPS)

    def row(self) -> dict:
        return {
            "model": self.name,
            "family": self.family,
            "input": "x".join(str(d) for d in self.input_shape),
            "units_found": " ".join(f"{k}={v}" for k, v in self.units.items()) or "-",
            "params_before": self.params_before,
            "params_after": self.params_after,
            **{step: self.steps.get(step, "-") for step in STEPS},
            "discovery_s": round(self.discovery_seconds, 2),
            "seconds": round(self.seconds, 1),
            "notes": " | ".join(self.notes),
            "commit": self.commit,
        }

    @classmethod
    def from_row(cls, row: dict, *, commit: str = "") -> ZooResult:
        """The result a ``zoo.csv`` row records (``commit`` for rows written without one)."""
        units = dict(u.split("=") for u in row["units_found"].split() if "=" in u)
        return cls(
            name=row["model"],
            family=row["family"],
            input_shape=tuple(int(d) for d in row["input"].split("x") if d),
            units={k: int(v) for k, v in units.items()},
            params_before=int(row["params_before"]),
            params_after=int(row["params_after"]),
            discovery_seconds=float(row["discovery_s"]),
            seconds=float(row["seconds"]),
            steps={step: row[step] for step in STEPS if row.get(step, "-") != "-"},
            notes=[n for n in row.get("notes", "").split(" | ") if n],
            commit=row.get("commit") or commit,
        )


# ----------------------------------------------------------------------------- the models


def _vision_kwargs(name: str) -> tuple[dict, int | None]:
    """Constructor arguments and input side for models that fix their input size when built."""
    if name.startswith("vit_"):
        side = 56 if name.endswith("_14") else 64
        return {"image_size": side}, side
    if name.startswith("maxvit"):
        return {"input_size": (224, 224)}, 224
    return {}, None


def _smallest_side(model: nn.Module) -> int:
    for side in SIZES:
        try:
            with torch.no_grad():
                model(torch.zeros(1, 3, side, side))
            return side
        except Exception:  # too small for its pooling: try the next size
            continue
    return SIZES[-1]


def torchvision_models(names: Iterable[str] | None = None) -> list[ZooModel]:
    """Every classification model of the installed torchvision (or those in ``names``)."""
    from benchmarks._torchvision import import_torchvision

    models = import_torchvision().models
    found = models.list_models(module=models)
    zoo = []
    for name in names or found:
        kwargs, side = _vision_kwargs(name)

        def build(name=name, kwargs=kwargs):
            return models.get_model(name, weights=None, **kwargs).eval()

        zoo.append(ZooModel(name, "torchvision", build, _vision_example(build, side)))
    return zoo


def _vision_example(build: Callable[[], nn.Module], side: int | None) -> Callable[[], torch.Tensor]:
    def example():
        chosen = side or _smallest_side(build())
        return torch.randn(2, 3, chosen, chosen, generator=torch.Generator().manual_seed(0))

    return example


class Logits(nn.Module):
    """A Hugging Face model as tensor in, tensor out (logits or the last hidden state)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        kwargs = {"use_cache": False} if "CausalLM" in type(self.model).__name__ else {}
        out = self.model(x, **kwargs)
        return out.logits if hasattr(out, "logits") else out.last_hidden_state


def _ids() -> torch.Tensor:
    return torch.randint(3, 100, (2, 16), generator=torch.Generator().manual_seed(0))


def _hf_builders() -> dict[str, tuple[Callable[[], nn.Module], Callable[[], torch.Tensor]]]:
    import transformers as T

    from autoprune.prune.units import convert_conv1d

    small = {"num_hidden_layers": 2, "num_attention_heads": 4, "intermediate_size": 128}
    decoder = {**small, "vocab_size": 100, "hidden_size": 64, "num_key_value_heads": 2}
    ids, audio = _ids, lambda: torch.randn(2, 1600, generator=torch.Generator().manual_seed(0))
    image = lambda: torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # noqa: E731
    mel = lambda: torch.randn(2, 16, 64, generator=torch.Generator().manual_seed(0))  # noqa: E731
    whisper = T.WhisperConfig(
        vocab_size=100,
        d_model=64,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=4,
        decoder_attention_heads=4,
        encoder_ffn_dim=128,
        decoder_ffn_dim=128,
        num_mel_bins=16,
        max_source_positions=32,
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
        decoder_start_token_id=0,
    )
    return {
        "bert": (lambda: T.BertModel(T.BertConfig(vocab_size=100, hidden_size=64, **small)), ids),
        "roberta": (
            lambda: T.RobertaModel(T.RobertaConfig(vocab_size=100, hidden_size=64, **small)),
            ids,
        ),
        "distilbert": (
            lambda: T.DistilBertModel(
                T.DistilBertConfig(vocab_size=100, dim=64, n_layers=2, n_heads=4, hidden_dim=128)
            ),
            ids,
        ),
        "gpt2": (
            lambda: convert_conv1d(
                T.GPT2LMHeadModel(
                    T.GPT2Config(
                        vocab_size=100,
                        n_embd=64,
                        n_layer=2,
                        n_head=4,
                        n_positions=64,
                        bos_token_id=0,
                        eos_token_id=0,
                        tie_word_embeddings=False,
                    )
                )
            ),
            ids,
        ),
        "llama": (lambda: T.LlamaForCausalLM(T.LlamaConfig(**decoder)), ids),
        "mistral": (lambda: T.MistralForCausalLM(T.MistralConfig(**decoder)), ids),
        "qwen2": (lambda: T.Qwen2ForCausalLM(T.Qwen2Config(**decoder)), ids),
        "vit": (
            lambda: T.ViTModel(T.ViTConfig(hidden_size=64, image_size=32, patch_size=8, **small)),
            image,
        ),
        "wav2vec2": (
            lambda: T.Wav2Vec2Model(
                T.Wav2Vec2Config(
                    hidden_size=64,
                    conv_dim=(32, 32),
                    conv_stride=(5, 2),
                    conv_kernel=(10, 3),
                    num_conv_pos_embeddings=16,
                    num_conv_pos_embedding_groups=4,
                    **small,
                )
            ),
            audio,
        ),
        "whisper-encoder": (lambda: T.WhisperModel(whisper).encoder, mel),
    }


def huggingface_models(names: Iterable[str] | None = None) -> list[ZooModel]:
    """The Hugging Face families, each built from a small config (random weights)."""
    builders = _hf_builders()
    zoo = []
    for name in names or builders:
        make, example = builders[name]

        def build(make=make):
            torch.manual_seed(0)
            return Logits(make()).eval()

        zoo.append(ZooModel(name, "huggingface", build, example))
    return zoo


# ----------------------------------------------------------------------------- the steps


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"FAIL: {type(exc).__name__}: {text[:160]}"


def _unit_kinds(units) -> dict[str, int]:
    kinds: dict[str, int] = {}
    for entry in units.history:
        kinds[entry.kind] = kinds.get(entry.kind, 0) + units.original_channels[entry.unit]
    return kinds


def _step(result: ZooResult, step: str, run: Callable[[], object]):
    """Run one step, recording ``ok`` or why it failed; None when it failed."""
    try:
        out = run()
    except Exception as exc:
        result.steps[step] = _reason(exc)
        return None
    result.steps[step] = "ok"
    return out if out is not None else True


def run_model(model_spec: ZooModel, *, seconds: float = MODEL_SECONDS) -> ZooResult:
    """``model_spec`` through every step (see the module docstring), under a time limit."""
    from autoprune.prune.units import time_limit

    result = ZooResult(model_spec.name, model_spec.family)
    start = time.perf_counter()
    try:
        with time_limit(seconds, f"{model_spec.name} through the zoo's steps"):
            _run_steps(model_spec, result)
    except TimeoutError as exc:
        step = next((s for s in STEPS if s not in result.steps), STEPS[-1])
        result.steps[step] = _reason(exc)
    result.seconds = time.perf_counter() - start
    return result


def _run_steps(spec: ZooModel, result: ZooResult) -> None:
    from autoprune.apply import apply_policy, load_pruned, save_pruned
    from autoprune.introspect import count_params, profile_model
    from autoprune.policy import Policy
    from autoprune.prune import structured_units

    torch.manual_seed(0)
    dense = spec.build()
    example = spec.example()
    result.input_shape = tuple(example.shape)
    result.params_before = count_params(dense)
    if not _step(result, "inspect", lambda: profile_model(dense, example[:1])):
        return
    start = time.perf_counter()
    units = _step(result, "units", lambda: structured_units(dense, example[:1]))
    result.discovery_seconds = time.perf_counter() - start
    if not units:
        return
    result.units, result.notes = _unit_kinds(units), list(units.notes)
    policy = Policy.uniform(list(units.groups), 0.5, granularity="structured")
    pruned = _step(result, "prune", lambda: apply_policy(dense, policy, example_input=example[:1]))
    if not pruned:
        return
    result.params_after = count_params(pruned.model)
    with torch.no_grad():
        expected = dense(example).shape
        output = _step(result, "forward", lambda: _forward(pruned.model, example, expected))
    if output is None:
        return
    with tempfile.TemporaryDirectory() as tmp:

        def reload():
            out = save_pruned(pruned.model, Path(tmp) / "pruned", policy, history=pruned.history)
            loaded = load_pruned(out, build_model=spec.build, example_input=example[:1])
            with torch.no_grad():
                if not torch.equal(loaded(example), output):
                    raise AssertionError(
                        "the reloaded model's outputs differ from the pruned model's"
                    )

        if not _step(result, "reload", reload):
            return
        _step(result, "onnx", lambda: _onnx(pruned.model, example, Path(tmp) / "onnx"))


def _forward(model: nn.Module, example: torch.Tensor, expected: torch.Size) -> torch.Tensor:
    out = model(example)
    if out.shape != expected:
        raise AssertionError(f"outputs of shape {tuple(out.shape)}, not {tuple(expected)}")
    return out


def _onnx(model: nn.Module, example: torch.Tensor, out: Path) -> None:
    import contextlib

    from autoprune.export import ParityCheck, export_model

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        rows = export_model(model, example[:1], out, formats=("onnx",), parity=ParityCheck())
    if not all(row.get("parity", True) for row in rows):
        raise AssertionError(f"ONNX parity failed: {rows}")


# ----------------------------------------------------------------------------- the report


def write_results(results: list[ZooResult], out: Path) -> tuple[Path, Path]:
    """``zoo.csv`` (one row per model) and ``zoo.md`` (summary and table) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    rows = [r.row() for r in results]
    csv_path, md_path = out / "zoo.csv", out / "zoo.md"
    with csv_path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["model"])
        writer.writeheader()
        writer.writerows(rows)
    md_path.write_text(render_markdown(results))
    return csv_path, md_path


def read_results(out: Path) -> list[ZooResult]:
    """The results an earlier run wrote in ``out`` (none when there are none)."""
    csv_path, md_path = out / "zoo.csv", out / "zoo.md"
    if not csv_path.is_file():
        return []
    header = md_path.read_text().split("`") if md_path.is_file() else []
    commit = header[1] if len(header) > 1 else ""
    with csv_path.open(newline="") as f:
        return [ZooResult.from_row(row, commit=commit) for row in csv.DictReader(f)]


def _commits(results: list[ZooResult]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.commit] = counts.get(r.commit, 0) + 1
    if len(counts) == 1:
        return f"Commit `{next(iter(counts))}`"
    return "Commits " + ", ".join(
        f"`{c}` ({n} model{'s' if n != 1 else ''})" for c, n in counts.items()
    )


def render_markdown(results: list[ZooResult]) -> str:
    """The zoo's summary per family and its table, as markdown."""
    lines = [
        "# The zoo",
        "",
        f"{_commits(results)}, torch {torch.__version__}; random weights, batch 2. Steps: "
        + ", ".join(STEPS)
        + " (prune: half of every unit group; reload: outputs equal to the pruned model's; "
        "onnx: export with parity within 1e-4 + 1e-5 x the largest output).",
        "",
        "| family | models | through every step |",
        "|---|---|---|",
    ]
    for family in sorted({r.family for r in results}):
        members = [r for r in results if r.family == family]
        lines.append(f"| {family} | {len(members)} | {sum(r.passed for r in members)} |")
    slowest = max(results, key=lambda r: r.discovery_seconds, default=None)
    if slowest:
        lines += ["", f"Slowest unit discovery: {slowest.name}, {slowest.discovery_seconds:.1f} s."]
    lines += [
        "",
        "| model | input | units found | params before | params after | "
        + " | ".join(STEPS)
        + " | discovery s | seconds |",
        "|" + "---|" * (7 + len(STEPS)),
    ]
    for r in results:
        row = r.row()
        steps = " | ".join(row[s] if row[s] in ("ok", "-") else "FAIL" for s in STEPS)
        lines.append(
            f"| {r.name} | {row['input']} | {row['units_found']} | {r.params_before:,} | "
            f"{r.params_after:,} | {steps} | {row['discovery_s']} | {row['seconds']} |"
        )
    failures = [r for r in results if not r.passed or r.notes]
    if failures:
        lines += ["", "## Failures and notes", ""]
        for r in failures:
            reasons = [f"{s}: {r.steps[s]}" for s in STEPS if r.steps.get(s, "ok") != "ok"]
            lines.append(f"- **{r.name}**: " + "; ".join(reasons + r.notes))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.zoo", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--only", nargs="*", help="model names (torchvision or Hugging Face)")
    parser.add_argument("--family", choices=("torchvision", "huggingface"))
    parser.add_argument("--out", default="results/zoo")
    parser.add_argument("--seconds", type=float, default=MODEL_SECONDS, help="limit per model")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other models' rows of an earlier run in --out (each row names its commit)",
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    models = _select(args.only, args.family)
    at = code_commit()
    rerun = {spec.name for spec in models}
    kept = [r for r in read_results(Path(args.out)) if r.name not in rerun] if args.merge else []
    results = []
    for spec in models:
        result = run_model(spec, seconds=args.seconds)
        result.commit = at
        results.append(result)
        failed = [f"{s}: {result.steps[s]}" for s in STEPS if result.steps.get(s, "ok") != "ok"]
        print(
            f"{spec.name}: {'ok' if result.passed else '; '.join(failed)} ({result.seconds:.1f} s)",
            flush=True,
        )
        write_results(_in_order(kept + results), Path(args.out))
    print(f"{sum(r.passed for r in results)} of {len(results)} models through every step")
    return 0


def _in_order(results: list[ZooResult]) -> list[ZooResult]:
    """Torchvision first, then Hugging Face; by name within each."""
    return sorted(results, key=lambda r: (r.family != "torchvision", r.name))


def _select(only: list[str] | None, family: str | None) -> list[ZooModel]:
    hf_names = list(_hf_builders())
    models: list[ZooModel] = []
    if family in (None, "torchvision"):
        tv = [n for n in only if n not in hf_names] if only else None
        if tv != []:
            models += torchvision_models(tv)
    if family in (None, "huggingface"):
        hf = [n for n in only if n in hf_names] if only else None
        if hf != []:
            models += huggingface_models(hf)
    return models


if __name__ == "__main__":
    raise SystemExit(main())
