"""``build-repo``: a trained model in, a new version of a served Triton pipeline out.

Everything that can fail on the user's input (paths, names, labels, the model itself, its
conversion and parity) happens before the repository is touched; only then is the version
staged beside the repository and published (see :mod:`._publish`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

import tritonkit
from tritonkit.converters import (
    DEFAULT_PARITY_ATOL,
    ModelSignature,
    ParityReport,
    SourceModel,
    check_parity,
    export_onnx,
    load_source,
    require_parity,
)
from tritonkit.custom_backends import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_PIXELS,
    ONNX_CLASSIFIER_DIR,
    PREPROCESSOR_DIR,
    PREPROCESSOR_INPUT,
    PREPROCESSOR_OUTPUT,
    ImageDecodeError,
    ImageSpec,
    backend_files,
    preprocess_image,
)

from ._configs import (
    Scheduling,
    classifier_config,
    ensemble_config,
    preprocess_config,
    render_config,
)
from ._defaults import DEFAULT_MAX_BATCH_SIZE, default_cpu_layout, parallel_runs_for, preprocess_threads_for
from ._errors import BuildOptionsError
from ._labels import check_label_count, labels_bytes, read_labels
from ._names import classifier_name, preprocess_name, validate_model_name
from ._publish import (
    STAGE_PREFIX,
    StagedModel,
    next_version,
    prune_versions,
    publish_staged,
    repository_lock,
    stage_models,
    staging_root,
)

TARGETS: tuple[str, ...] = ("embedded", "triton")
DEVICES: tuple[str, ...] = ("cpu", "gpu")
SCALING_CHOICES: tuple[str, ...] = ("auto", "inception", "vgg", "unit", "none")
MANIFEST_FILENAME = "tritonkit.json"
BUILD_STEPS: tuple[str, ...] = ("load", "convert", "parity", "publish")


@dataclass(frozen=True)
class BuildOptions:
    """Everything ``build-repo`` takes besides the source model. Checked on construction."""

    name: str
    repository: Path = Path("model_repository")
    labels: Path | None = None
    scaling: str = "auto"
    target: str = "embedded"
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    instances: int | None = None
    preprocess_instances: int | None = None
    intra_op_threads: int | None = None
    max_queue_delay_us: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    ensemble: bool = True
    keep: int | None = None
    samples: tuple[Path, ...] = ()
    opset: int | None = None
    parity_atol: float = DEFAULT_PARITY_ATOL
    device: str = "cpu"
    max_image_bytes: int = DEFAULT_MAX_BYTES
    max_image_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        validate_model_name(self.name)
        if self.target not in TARGETS:
            raise BuildOptionsError(f"--target must be one of {', '.join(TARGETS)}, got {self.target!r}")
        if self.scaling not in SCALING_CHOICES:
            raise BuildOptionsError(
                f"--scaling must be one of {', '.join(SCALING_CHOICES)}, got {self.scaling!r}"
            )
        if self.device not in DEVICES:
            raise BuildOptionsError(f"--device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.max_image_bytes < 1 or self.max_image_pixels < 1:
            raise BuildOptionsError("--max-image-bytes and --max-image-pixels must be positive")
        if self.keep is not None and self.keep < 1:
            raise BuildOptionsError(f"--keep must be at least 1 (the version just built), got {self.keep}")
        if self.parity_atol <= 0:
            raise BuildOptionsError(f"--parity-atol must be positive, got {self.parity_atol}")
        for threads in (self.intra_op_threads, self.preprocess_instances):
            if threads is not None and threads < 1:
                raise BuildOptionsError("--intra-op-threads and --preprocess-instances must be at least 1")
        missing = [str(p) for p in self.samples if not Path(p).is_file()]
        if missing:
            raise BuildOptionsError(f"sample images not found: {', '.join(missing)}")
        if not self.ensemble and self.samples:
            raise BuildOptionsError("--samples are images for the ensemble; drop them with --no-ensemble")


@dataclass(frozen=True)
class BuildResult:
    """What a build published."""

    name: str
    repository: Path
    version: int
    models: tuple[str, ...]
    signature: ModelSignature
    parity: ParityReport | None
    scaling: str | None
    scaling_reason: str
    target: str
    pruned: dict[str, list[int]] = field(default_factory=dict)

    @property
    def model_dirs(self) -> list[Path]:
        return [self.repository / m for m in self.models]


Progress = Callable[[str], None]


def build_repository(
    source: str | os.PathLike[str], options: BuildOptions, progress: Progress | None = None
) -> BuildResult:
    """Convert ``source``, check it, and publish it as a new version of ``options.name``.

    ``progress`` is called with each of :data:`BUILD_STEPS` as it starts.
    """
    step = progress or (lambda _name: None)
    repo = Path(options.repository)
    labels = read_labels(options.labels) if options.labels else None

    step("load")
    model = load_source(source)
    scaling, scaling_reason = _choose_scaling(options.scaling, model)
    if options.ensemble:
        model.signature.image_input()  # fail before converting when the ensemble cannot fit
        model.signature.classifier_output()

    with tempfile.TemporaryDirectory(prefix="work-", dir=_ensure_dir(staging_root(repo))) as work_dir:
        work = Path(work_dir)
        onnx_path = work / "model.onnx"
        step("convert")
        signature = export_onnx(model, onnx_path, opset=options.opset)

        spec: ImageSpec | None = None
        if options.ensemble:
            image = signature.image_input()
            spec = ImageSpec(
                height=image.height,
                width=image.width,
                channels=image.channels,
                layout=image.layout,
                scaling=scaling,
                dtype=image.dtype,
                max_bytes=options.max_image_bytes,
                max_pixels=options.max_image_pixels,
            )
        num_classes = _num_classes(signature)
        if labels is not None:
            if num_classes is None:
                raise BuildOptionsError(
                    "--labels needs a model with one (batch, classes) output; this model has "
                    f"{len(signature.outputs)} outputs"
                )
            assert options.labels is not None
            check_label_count(labels, num_classes, options.labels)

        step("parity")
        inputs = _parity_inputs(signature, spec, options.samples)
        parity = None
        if inputs:
            parity = check_parity(model, onnx_path, inputs, atol=options.parity_atol)
            require_parity(parity)
        # What the served pipeline must answer for the check images: rollouts verify it.
        checks = _expected_answers(onnx_path, inputs[-CHECK_IMAGE_COUNT:]) if spec else None

        step("publish")
        staged = _staged_models(options, signature, spec, onnx_path, labels, model, parity, scaling)
        names = [m.name for m in staged]
        with repository_lock(repo) as stage_root:
            version = next_version(repo, names)
            with tempfile.TemporaryDirectory(prefix=STAGE_PREFIX, dir=stage_root) as stage_dir:
                staging = Path(stage_dir)
                for staged_model in staged:
                    staged_model.version_files[MANIFEST_FILENAME] = _manifest(
                        staged_model.name, version, options, model, signature, parity, scaling, checks
                    )
                stage_models(staging, staged, version)
                publish_staged(repo, staging, staged, version)
                pruned: dict[str, list[int]] = {}
                if options.keep:
                    for name in names:
                        removed = prune_versions(repo, name, options.keep, staging)
                        if removed:
                            pruned[name] = removed
    return BuildResult(
        name=options.name,
        repository=repo,
        version=version,
        models=tuple(names),
        signature=signature,
        parity=parity,
        scaling=scaling if options.ensemble else None,
        scaling_reason=scaling_reason,
        target=options.target,
        pruned=pruned,
    )


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _choose_scaling(requested: str, model: SourceModel) -> tuple[str, str]:
    if requested != "auto":
        return requested, "as requested"
    if model.normalizes_input:
        return "none", "the model rescales raw pixels itself (it has a Rescaling/Normalization layer)"
    return "inception", "default for models that expect [-1, 1] inputs (Keras applications); pass --scaling"


def _num_classes(signature: ModelSignature) -> int | None:
    if len(signature.outputs) != 1 or len(signature.outputs[0].sample_shape) != 1:
        return None
    dim = signature.outputs[0].sample_shape[0]
    return None if dim is None else int(dim)


CHECK_IMAGE_COUNT = 4


def check_images(count: int = CHECK_IMAGE_COUNT, size: int = 96, seed: int = 0) -> list[bytes]:
    """A few varied, deterministic PNGs (noise, gradients, blocks): the parity gate runs them
    through both models, and their expected scores go into the manifest for rollout checks."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 255, size, dtype=np.float32)
    arrays = [
        rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
        np.stack(
            [np.tile(ramp, (size, 1)), np.tile(ramp[:, None], (1, size)), np.full((size, size), 128.0)], -1
        ),
        np.kron(rng.integers(0, 256, (4, 4, 3)), np.ones((size // 4, size // 4, 1))),
        np.clip(rng.normal(128, 60, (size, size, 3)), 0, 255),
    ]
    images = []
    for array in arrays[:count]:
        buffer = io.BytesIO()
        Image.fromarray(np.asarray(array, dtype=np.uint8)).save(buffer, format="PNG")
        images.append(buffer.getvalue())
    return images


def _parity_inputs(
    signature: ModelSignature, spec: ImageSpec | None, samples: Sequence[Path]
) -> list[np.ndarray]:
    """Real inputs for the parity gate: the user's sample images and synthetic ones, preprocessed
    exactly as the served preprocessor will; for tensor models, random data of the input's shape."""
    if spec is not None:
        arrays = []
        for path in samples:
            try:
                arrays.append(preprocess_image(Path(path).read_bytes(), spec))
            except ImageDecodeError as exc:
                raise BuildOptionsError(f"sample image {path} cannot be used: {exc}") from exc
        return arrays + [preprocess_image(data, spec) for data in check_images()]
    if len(signature.inputs) != 1:
        return []  # multi-input models: the exporter's own checks apply, no generic inputs exist
    shape = signature.inputs[0].sample_shape
    if any(d is None for d in shape):
        return []
    rng = np.random.default_rng(0)
    dtype = np.dtype(signature.inputs[0].dtype)
    if dtype.kind != "f":
        return []
    return [rng.random(tuple(int(d) for d in shape if d is not None)).astype(dtype) for _ in range(4)]


def _staged_models(
    options: BuildOptions,
    signature: ModelSignature,
    spec: ImageSpec | None,
    onnx_path: Path,
    labels: list[str] | None,
    model: SourceModel,
    parity: ParityReport | None,
    scaling: str,
) -> list[StagedModel]:
    layout = default_cpu_layout()
    cpu = options.device == "cpu"
    instances = options.instances or layout.classifier_instances
    threads = options.intra_op_threads or layout.intra_op_threads
    preprocess_instances = options.preprocess_instances or layout.preprocess_instances

    def preferred(default: tuple[int, ...], on_cpu: bool) -> tuple[int, ...]:
        # The CPU-measured sizes; on a GPU the batcher's own choice (largest batch) is better.
        if options.preferred_batch_sizes or not on_cpu:
            return options.preferred_batch_sizes
        return tuple(size for size in default if size <= options.max_batch_size)

    scheduling = Scheduling(
        max_batch_size=options.max_batch_size,
        max_queue_delay_us=options.max_queue_delay_us,
        preferred_batch_sizes=preferred(layout.classifier_preferred_batch_sizes, cpu),
        instances=instances,
        kind="KIND_GPU" if options.device == "gpu" else "KIND_CPU",
    )
    if options.target == "embedded":
        runtime_parameters = {
            "intra_op_threads": str(threads),
            "inter_op_threads": "1",
            "allow_spinning": "0",
            # one instance runs a batch's requests side by side (see CpuLayout)
            "parallel_runs": str(parallel_runs_for(instances, threads) if cpu else 1),
        }
    else:  # parameter names of Triton's onnxruntime backend
        runtime_parameters = {"intra_op_thread_count": str(threads), "inter_op_thread_count": "1"}
    labels_file = {"labels.txt": labels_bytes(labels)} if labels else {}

    classifier = classifier_name(options.name) if options.ensemble else options.name
    version_files: dict[str, Path | bytes] = {"model.onnx": onnx_path}
    if options.target == "embedded":
        version_files.update({p.name: p for p in backend_files(ONNX_CLASSIFIER_DIR)})
    image_layout = spec.layout if spec else None
    staged = [
        StagedModel(
            name=classifier,
            config_text=render_config(
                classifier_config(
                    classifier,
                    signature,
                    scheduling,
                    target=options.target,
                    image_layout=image_layout,
                    labels=bool(labels),
                    parameters=runtime_parameters,
                )
            ),
            version_files=version_files,
            model_files=dict(labels_file),
        )
    ]
    if spec is None:
        return staged

    pixels = signature.inputs[0]
    preprocess = preprocess_name(options.name)
    staged.append(
        StagedModel(
            name=preprocess,
            config_text=render_config(
                preprocess_config(
                    preprocess,
                    pixels,
                    dataclasses.replace(  # Pillow decodes on the CPU
                        scheduling,
                        kind="KIND_CPU",
                        preferred_batch_sizes=preferred(layout.preprocess_preferred_batch_sizes, True),
                    ),
                    instances=preprocess_instances,
                    parameters={
                        **spec.to_parameters(),
                        "threads": str(
                            preprocess_threads_for(preprocess_instances, layout.preprocess_threads)
                        ),
                    },
                    input_name=PREPROCESSOR_INPUT,
                    output_name=PREPROCESSOR_OUTPUT,
                )
            ),
            version_files={p.name: p for p in backend_files(PREPROCESSOR_DIR)},
        )
    )
    staged.append(
        StagedModel(
            name=options.name,
            config_text=render_config(
                ensemble_config(
                    options.name,
                    preprocess=preprocess,
                    preprocess_io=(PREPROCESSOR_INPUT, PREPROCESSOR_OUTPUT),
                    classifier=classifier,
                    classifier_input=pixels.name,
                    classifier_output=signature.outputs[0],
                    max_batch_size=options.max_batch_size,
                    labels=bool(labels),
                )
            ),
            model_files=dict(labels_file),
        )
    )
    return staged


def _expected_answers(onnx_path: Path, inputs: list[np.ndarray]) -> list[list[float]]:
    outputs = load_source(onnx_path).predict(np.stack(inputs))
    scores = next(iter(outputs.values()))
    return [[round(float(v), 7) for v in row] for row in np.asarray(scores).reshape(len(inputs), -1)]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    if path.is_dir():
        for item in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(item.relative_to(path).as_posix().encode())
            digest.update(item.read_bytes())
    else:
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _manifest(
    name: str,
    version: int,
    options: BuildOptions,
    model: SourceModel,
    signature: ModelSignature,
    parity: ParityReport | None,
    scaling: str,
    checks: list[list[float]] | None,
) -> bytes:
    """``tritonkit.json`` in every version folder: where the version came from and how it was checked.

    It also keeps the ensemble's version folder non-empty (an empty one hangs Triton's poller).
    """
    manifest = {
        "model": name,
        "version": version,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "tritonkit": tritonkit.__version__,
        "target": options.target,
        "source": {
            "path": str(Path(model.path).resolve()),
            "kind": model.kind,
            "sha256": _sha256(Path(model.path)),
        },
        "signature": {
            "inputs": [asdict(t) for t in signature.inputs],
            "outputs": [asdict(t) for t in signature.outputs],
        },
        "scaling": scaling if options.ensemble else None,
        "parity": asdict(parity) if parity else None,
        "checks": {"images": "check_images()", "scores": checks} if checks else None,
    }
    return (json.dumps(manifest, indent=2) + "\n").encode()


__all__ = ["BUILD_STEPS", "SCALING_CHOICES", "TARGETS", "BuildOptions", "BuildResult", "build_repository"]
