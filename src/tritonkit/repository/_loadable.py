"""Will Triton load this version? Checked on the staged files, before any server can see them.

A polling Triton that finds a version it cannot load does not give up: it retries it on every
poll, and each attempt reloads every ensemble that uses the model (observed on 2.51 with a
truncated ``model.onnx``: the old version keeps serving, but the ensemble is reloaded once a
poll, forever). The parity gate runs the ONNX model in the work folder; the copy that is
published is another file, and a configuration-only version (``tritonkit tune``) copies the
files of a version already on disk. So every staged version is checked where it will be
published from, after the last copy, and a version that would not load is refused there.

What is checked, per model: ``config.pbtxt`` parses with Triton's schema and names its folder;
the version folder is not empty (an empty one hangs the poller); the file the backend loads is
there; every ``.onnx`` file opens in onnxruntime and has the tensors the config names.
"""

from __future__ import annotations

from pathlib import Path

from google.protobuf import text_format

from ._configs import CONFIG_FILENAME, ModelConfig, parse_config
from ._errors import PublishError

# The file each backend loads from a version folder when the config names none.
_DEFAULT_MODEL_FILES = {"python": "model.py", "onnxruntime": "model.onnx"}
_PLATFORM_BACKENDS = {"onnxruntime_onnx": "onnxruntime"}


def check_loadable(model_dir: Path, version: int) -> None:
    """Raise :class:`PublishError` unless version ``version`` of the model in ``model_dir`` would load.

    ``model_dir`` is the model's folder as it will be published (``config.pbtxt`` beside the
    version folder), normally the staged copy.
    """
    name = model_dir.name
    where = f"{name} version {version}"
    config = _read_config(model_dir / CONFIG_FILENAME, where)
    if config.name != name:
        raise PublishError(f"{where}: config.pbtxt names the model {config.name!r}, not {name!r}")
    version_dir = model_dir / str(version)
    files = sorted(p for p in version_dir.rglob("*") if p.is_file()) if version_dir.is_dir() else []
    if not files:
        raise PublishError(f"{where}: the version folder is empty (a polling Triton hangs on one)")
    backend = config.backend or _PLATFORM_BACKENDS.get(config.platform, "")
    expected = config.default_model_filename or _DEFAULT_MODEL_FILES.get(backend)
    if expected and not (version_dir / expected).is_file():
        raise PublishError(f"{where}: {expected} is missing, which the {backend} backend loads")
    for path in files:
        if path.suffix == ".onnx":
            _check_onnx(path, config, where)


def _read_config(path: Path, where: str) -> ModelConfig:
    try:
        return parse_config(path.read_text())
    except OSError as exc:
        raise PublishError(f"{where}: cannot read {path.name}: {exc.strerror}") from exc
    except text_format.ParseError as exc:
        raise PublishError(f"{where}: config.pbtxt is not a valid model config: {exc}") from exc


def _check_onnx(path: Path, config: ModelConfig, where: str) -> None:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise PublishError(
            f"{where}: checking {path.name} before publishing needs onnxruntime: "
            "pip install 'tritonkit[onnx]'"
        ) from exc
    options = ort.SessionOptions()
    # Only whether it loads matters: no graph rewriting, one thread, next to a busy server.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own classes for each way a file is broken
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PublishError(
            f"{where}: {path.name} does not load in onnxruntime, so Triton could not load it "
            f"either ({reason}); nothing was published"
        ) from exc
    if path.name != (config.default_model_filename or "model.onnx"):
        return
    graph = {
        "input": {i.name for i in session.get_inputs()},
        "output": {o.name for o in session.get_outputs()},
    }
    for kind, tensors in (("input", config.input), ("output", config.output)):
        missing = sorted(t.name for t in tensors if t.name not in graph[kind])
        if missing:
            raise PublishError(
                f"{where}: config.pbtxt names {kind}s {missing} that {path.name} does not have "
                f"(it has {sorted(graph[kind])})"
            )
