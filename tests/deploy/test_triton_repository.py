"""What ``build-repo --target triton`` makes is what the stock-Triton containers mount and expect.

A tiny real ONNX image classifier ([N, 32, 32, 3] -> [N, 4]) goes through the real CLI into
``model_repository/`` of a scratch folder (the path docker-compose.yml mounts); the configs are
parsed with Triton's own protobuf schema.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from testsupport import make_onnx_classifier

NAME = "flowers"
LABELS = ("daisy", "rose", "tulip", "sunflower")
# What the NGC image's Python has for a Python-backend model: the standard library, numpy (shipped
# with the image), Pillow (deploy/triton/Dockerfile adds it), the backend's own utils module.
ALLOWED_IMPORTS = set(sys.stdlib_module_names) | {"numpy", "PIL", "triton_python_backend_utils"}


def _config(model_dir: Path, name: str = "config.pbtxt") -> model_config_pb2.ModelConfig:
    return text_format.Parse((model_dir / name).read_text(), model_config_pb2.ModelConfig())


def _build(work: Path, *options: str) -> Path:
    """Run the real ``tritonkit build-repo --target triton`` in ``work``; return ``work/model_repository``."""
    source = make_onnx_classifier(work / "classifier.onnx", size=32, classes=len(LABELS))
    (work / "labels.txt").write_text("\n".join(LABELS) + "\n")
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "tritonkit"),
            *("build-repo", str(source), "--name", NAME, "--labels", "labels.txt", "--target", "triton"),
            *options,
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return work / "model_repository"


@pytest.fixture(scope="module")
def triton_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``model_repository/`` as ``tritonkit build-repo ... --target triton`` leaves it (default --repo)."""
    return _build(tmp_path_factory.mktemp("checkout"))


def test_repository_holds_the_pipeline_for_native_onnxruntime(triton_repo: Path) -> None:
    assert sorted(p.name for p in triton_repo.iterdir() if p.is_dir()) == [
        NAME,
        f"{NAME}_classifier",
        f"{NAME}_preprocess",
    ]
    classifier = _config(triton_repo / f"{NAME}_classifier")
    assert classifier.platform == "onnxruntime_onnx" and not classifier.backend
    assert classifier.default_model_filename == "model.onnx"
    version = triton_repo / f"{NAME}_classifier" / "1"
    assert (version / "model.onnx").is_file()
    assert not (version / "model.py").exists(), "the triton target must not host onnxruntime in Python"
    assert [g.kind for g in classifier.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_CPU]
    assert classifier.max_batch_size > 0

    preprocess = _config(triton_repo / f"{NAME}_preprocess")
    assert preprocess.backend == "python"
    assert {"model.py", "imaging.py"} <= {
        p.name for p in (triton_repo / f"{NAME}_preprocess" / "1").iterdir()
    }

    ensemble = _config(triton_repo / NAME)
    assert ensemble.platform == "ensemble"
    assert [step.model_name for step in ensemble.ensemble_scheduling.step] == [
        f"{NAME}_preprocess",
        f"{NAME}_classifier",
    ]
    assert [(i.name, i.data_type, list(i.dims)) for i in ensemble.input] == [
        ("IMAGE", model_config_pb2.TYPE_STRING, [1])
    ]
    assert [(o.name, o.data_type, list(o.dims)) for o in ensemble.output] == [
        ("SCORES", model_config_pb2.TYPE_FP32, [len(LABELS)])
    ]
    assert (triton_repo / NAME / "labels.txt").read_text().split() == list(LABELS)


def test_classifier_config_matches_the_onnx_graph(triton_repo: Path) -> None:
    import onnxruntime as ort

    classifier = _config(triton_repo / f"{NAME}_classifier")
    session = ort.InferenceSession(str(triton_repo / f"{NAME}_classifier" / "1" / "model.onnx"))
    graph_inputs = {i.name: i.shape[1:] for i in session.get_inputs()}
    graph_outputs = {o.name: o.shape[1:] for o in session.get_outputs()}
    assert {i.name: list(i.dims) for i in classifier.input} == graph_inputs == {"image": [32, 32, 3]}
    assert {o.name: list(o.dims) for o in classifier.output} == graph_outputs


def test_preprocessor_imports_only_what_the_triton_image_has(triton_repo: Path) -> None:
    version = triton_repo / f"{NAME}_preprocess" / "1"
    siblings = {p.stem for p in version.glob("*.py")}
    for source in version.glob("*.py"):
        tree = ast.parse(source.read_text(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0, (
                    f"{source.name}: relative import (the stub loads files as top-level modules)"
                )
                names = [node.module or ""]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in ALLOWED_IMPORTS | siblings, (
                    f"{source.name} imports {name}, not in the Triton image"
                )


def test_gpu_build_runs_the_classifier_on_kind_gpu_and_the_rest_as_before(
    triton_repo: Path, tmp_path: Path
) -> None:
    """What docker-compose.gpu.yml and the Kubernetes gpu overlay serve: ``--device gpu``."""
    gpu_repo = _build(tmp_path, "--device", "gpu")
    gpu = _config(gpu_repo / f"{NAME}_classifier")
    cpu = _config(triton_repo / f"{NAME}_classifier")
    assert [g.kind for g in gpu.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    # the preferred batch sizes measured on CPU are not imposed on a GPU: it batches all it can
    assert list(cpu.dynamic_batching.preferred_batch_size)
    assert not list(gpu.dynamic_batching.preferred_batch_size)
    for config in (gpu, cpu):
        config.ClearField("instance_group")
        config.dynamic_batching.ClearField("preferred_batch_size")
    assert gpu == cpu
    for model in (NAME, f"{NAME}_preprocess"):
        assert _config(gpu_repo / model) == _config(triton_repo / model)
