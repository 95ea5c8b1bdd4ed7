"""``tritonkit build-repo``: convert, check and publish a model as a new repository version."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._console import console, domain_errors

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
_STEP_TEXT = {
    "load": "Reading the model and its signature",
    "convert": "Converting to ONNX",
    "parity": "Checking ONNX against the source model",
    "publish": "Publishing the new version",
    "upload": "Uploading the version to object storage",
}


def _split_ints(values: list[str]) -> tuple[int, ...]:
    try:
        return tuple(int(v) for value in values for v in value.replace(",", " ").split())
    except ValueError as exc:
        raise typer.BadParameter(f"expected whole numbers such as 4,8: {exc}") from None


def _expand_samples(values: list[Path]) -> tuple[Path, ...]:
    paths: list[Path] = []
    for value in values:
        if value.is_dir():
            paths += sorted(p for p in value.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
        else:
            paths.append(value)
    return tuple(paths)


def build_repo(
    source: Annotated[Path, typer.Argument(help="A .keras/.h5 file, a SavedModel folder or an .onnx file.")],
    name: Annotated[str, typer.Option("--name", "-n", help="Model name; the ensemble's public name.")],
    repo: Annotated[
        str,
        typer.Option(
            "--repo",
            envvar="TRITONKIT_REPO",
            help="Model repository to add the version to: a folder, or s3://[host:port/]bucket/prefix.",
        ),
    ] = "model_repository",
    labels: Annotated[Path | None, typer.Option(help="Labels file: one class label per line.")] = None,
    scaling: Annotated[
        str, typer.Option(help="Pixel scaling: auto|inception|vgg|unit|none (auto reads the model).")
    ] = "auto",
    target: Annotated[
        str, typer.Option(help="embedded (pip-installed Triton) or triton (stock NGC Triton).")
    ] = "embedded",
    max_batch_size: Annotated[int, typer.Option(help="Largest batch the models accept.")] = 16,
    instances: Annotated[
        int | None,
        typer.Option(
            help="Classifier instances (default: 1, which runs a batch's requests in parallel on the cores)."
        ),
    ] = None,
    preprocess_instances: Annotated[
        int | None,
        typer.Option(
            help="Preprocessor instances (default: 1, which decodes a batch's images on one thread per core)."
        ),
    ] = None,
    intra_op_threads: Annotated[
        int | None, typer.Option(help="onnxruntime threads per classifier instance (default: cores).")
    ] = None,
    max_queue_delay_us: Annotated[int, typer.Option(help="Dynamic batcher queue delay.")] = 0,
    preferred_batch_sizes: Annotated[
        list[str] | None, typer.Option(help="Preferred batch sizes, e.g. 4,8 (repeatable).")
    ] = None,
    no_ensemble: Annotated[
        bool, typer.Option("--no-ensemble", help="Serve the model alone, without the image preprocessor.")
    ] = False,
    keep: Annotated[int | None, typer.Option(help="Keep only the newest N versions.")] = None,
    samples: Annotated[
        list[Path] | None, typer.Option(help="Images (or a folder) for the parity check (repeatable).")
    ] = None,
    opset: Annotated[int | None, typer.Option(help="ONNX opset (default: tritonkit's tested one).")] = None,
    parity_atol: Annotated[
        float | None, typer.Option(help="Largest accepted |source - ONNX| difference.")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or gpu: where classifier instances run.")] = "cpu",
    max_image_bytes: Annotated[
        int | None, typer.Option(help="Largest encoded image the preprocessor accepts, in bytes.")
    ] = None,
    max_image_pixels: Annotated[
        int | None, typer.Option(help="Largest image the preprocessor decodes, in pixels (bomb guard).")
    ] = None,
) -> None:
    """Build (or add a version to) a Triton model repository from a trained model."""
    with domain_errors():
        from tritonkit.repository import (
            BuildOptions,
            build_repository,
            build_to_object_store,
            is_object_store_url,
        )

        given = {
            "parity_atol": parity_atol,
            "max_image_bytes": max_image_bytes,
            "max_image_pixels": max_image_pixels,
        }
        extra: dict[str, Any] = {key: value for key, value in given.items() if value is not None}
        in_store = is_object_store_url(repo)
        if not in_store:
            extra["repository"] = Path(repo)
        options = BuildOptions(
            name=name,
            labels=labels,
            scaling=scaling,
            target=target,
            max_batch_size=max_batch_size,
            instances=instances,
            preprocess_instances=preprocess_instances,
            intra_op_threads=intra_op_threads,
            max_queue_delay_us=max_queue_delay_us,
            preferred_batch_sizes=_split_ints(preferred_batch_sizes or []),
            ensemble=not no_ensemble,
            keep=keep,
            samples=_expand_samples(samples or []),
            opset=opset,
            device=device,
            **extra,
        )
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        ) as progress:
            task = progress.add_task("Starting", total=None)

            def on_step(step: str) -> None:
                text = _STEP_TEXT.get(step, step)
                if console.is_terminal:
                    progress.update(task, description=text)
                else:
                    console.print(f"- {text}")

            if in_store:
                stored = build_to_object_store(source, options, repo, progress=on_step)
                result = stored.build
                locations = stored.publication.version_urls
                where = str(stored.publication.url)
            else:
                result = build_repository(source, options, progress=on_step)
                locations = [f"{model_dir}/{result.version}" for model_dir in result.model_dirs]
                where = str(result.repository)

        table = Table(title=f"{result.name} version {result.version} ({result.target})", show_header=False)
        table.add_column(style="bold")
        table.add_column()
        for location in locations:
            table.add_row("model", location)
        for tensor in result.signature.inputs:
            table.add_row("input", escape(f"{tensor.name} {tensor.dtype} {_shape(tensor.shape)}"))
        for tensor in result.signature.outputs:
            table.add_row("output", escape(f"{tensor.name} {tensor.dtype} {_shape(tensor.shape)}"))
        if result.scaling:
            table.add_row("scaling", f"{result.scaling} ({result.scaling_reason})")
        if result.parity:
            table.add_row("parity", result.parity.summary())
        for model_name, versions in result.pruned.items():
            table.add_row("pruned", f"{model_name} versions {', '.join(map(str, versions))}")
        console.print(table)
        console.print(
            f"Serve it with: [bold]tritonkit serve --repo {where}[/]", highlight=False, soft_wrap=True
        )


def _shape(shape: tuple[int | None, ...]) -> str:
    return (
        "["
        + ", ".join("batch" if i == 0 else ("?" if d is None else str(d)) for i, d in enumerate(shape))
        + "]"
    )
