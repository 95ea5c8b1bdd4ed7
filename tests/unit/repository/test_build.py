"""build_repository on a real (tiny) ONNX classifier: layout, versions, failures that change nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testsupport import make_onnx_classifier
from tritonkit.converters import ConversionError, ParityError, SignatureError
from tritonkit.repository import (
    BuildOptions,
    BuildOptionsError,
    InvalidNameError,
    LabelsError,
    PublishError,
    build_repository,
    existing_versions,
    parse_config,
)
from tritonkit.repository import _build as build_module
from tritonkit.repository import _publish as publish_module


def snapshot(root: Path) -> dict[str, bytes | None]:
    if not root.exists():
        return {}
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def onnx_model(tmp_path: Path) -> Path:
    return make_onnx_classifier(tmp_path / "tiny.onnx")


@pytest.fixture
def labels(tmp_path: Path) -> Path:
    path = tmp_path / "labels.txt"
    path.write_text("red\ngreen\nblue\ngrey\n")
    return path


def _options(tmp_path: Path, **kwargs: object) -> BuildOptions:
    return BuildOptions(name="tiny", repository=tmp_path / "repo", **kwargs)  # type: ignore[arg-type]


def test_build_makes_ensemble_preprocessor_and_classifier_with_parseable_configs(
    tmp_path: Path, onnx_model: Path, labels: Path
) -> None:
    result = build_repository(onnx_model, _options(tmp_path, labels=labels))
    repo = tmp_path / "repo"
    assert result.version == 1
    assert sorted(p.name for p in repo.iterdir()) == ["tiny", "tiny_classifier", "tiny_preprocess"]
    configs = {m: parse_config((repo / m / "config.pbtxt").read_text()) for m in result.models}
    assert configs["tiny"].platform == "ensemble"
    assert configs["tiny_classifier"].backend == "python"
    assert configs["tiny_preprocess"].parameters["scaling"].string_value == "inception"
    assert configs["tiny_preprocess"].parameters["height"].string_value == "32"
    assert (repo / "tiny_classifier" / "1" / "model.onnx").is_file()
    assert (repo / "tiny_classifier" / "1" / "model.py").is_file()
    assert (repo / "tiny_preprocess" / "1" / "imaging.py").is_file()
    assert (repo / "tiny" / "labels.txt").read_text().split() == ["red", "green", "blue", "grey"]
    manifest = json.loads((repo / "tiny_classifier" / "1" / "tritonkit.json").read_text())
    assert manifest["source"]["kind"] == "onnx" and manifest["parity"]["samples"] >= 4
    # nothing is left behind in the staging area
    assert not [p for p in (tmp_path / ".repo.tritonkit").iterdir() if p.name != "lock"]


def test_triton_target_uses_native_onnxruntime_and_ships_no_classifier_model_py(
    tmp_path: Path, onnx_model: Path
) -> None:
    build_repository(onnx_model, _options(tmp_path, target="triton"))
    config = parse_config((tmp_path / "repo" / "tiny_classifier" / "config.pbtxt").read_text())
    assert config.platform == "onnxruntime_onnx"
    assert config.parameters["intra_op_thread_count"].string_value
    assert not (tmp_path / "repo" / "tiny_classifier" / "1" / "model.py").exists()


def test_rebuilding_adds_a_version_and_never_touches_the_old_one(tmp_path: Path, onnx_model: Path) -> None:
    build_repository(onnx_model, _options(tmp_path))
    before = {
        m: snapshot(tmp_path / "repo" / m / "1") for m in ("tiny", "tiny_classifier", "tiny_preprocess")
    }
    result = build_repository(onnx_model, _options(tmp_path))
    assert result.version == 2
    for model, files in before.items():
        assert snapshot(tmp_path / "repo" / model / "1") == files
        assert existing_versions(tmp_path / "repo" / model) == [1, 2]


def test_keep_prunes_the_oldest_versions(tmp_path: Path, onnx_model: Path) -> None:
    for _ in range(3):
        result = build_repository(onnx_model, _options(tmp_path, keep=2))
    assert result.version == 3
    assert result.pruned == {"tiny_classifier": [1], "tiny_preprocess": [1], "tiny": [1]}
    assert existing_versions(tmp_path / "repo" / "tiny") == [2, 3]


def test_no_ensemble_publishes_the_classifier_alone_under_the_name(tmp_path: Path, onnx_model: Path) -> None:
    result = build_repository(onnx_model, _options(tmp_path, ensemble=False))
    assert result.models == ("tiny",)
    config = parse_config((tmp_path / "repo" / "tiny" / "config.pbtxt").read_text())
    assert config.backend == "python" and config.input[0].name == "image"


def test_failure_mid_build_leaves_the_repository_exactly_as_it_was(
    tmp_path: Path, onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_repository(onnx_model, _options(tmp_path))
    before = snapshot(tmp_path / "repo")
    calls = {"n": 0}
    real_compile = publish_module.py_compile.compile

    def crash_on_second_model(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        if calls["n"] > 1:
            raise KeyboardInterrupt  # the user hits Ctrl-C while the version is being staged
        return real_compile(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(publish_module.py_compile, "compile", crash_on_second_model)
    with pytest.raises(KeyboardInterrupt):
        build_repository(onnx_model, _options(tmp_path))
    assert snapshot(tmp_path / "repo") == before


def test_parity_failure_writes_nothing(
    tmp_path: Path, onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = make_onnx_classifier(tmp_path / "other.onnx", seed=7)
    real_export = build_module.export_onnx

    def export_a_different_model(model: object, output: Path, **kwargs: object) -> object:
        signature = real_export(model, output, **kwargs)  # type: ignore[arg-type]
        output.write_bytes(other.read_bytes())  # as if the exporter had miscompiled the model
        return signature

    monkeypatch.setattr(build_module, "export_onnx", export_a_different_model)
    with pytest.raises(ParityError):
        build_repository(onnx_model, _options(tmp_path))
    assert not (tmp_path / "repo").exists() or snapshot(tmp_path / "repo") == {}


def test_label_count_mismatch_is_refused_before_anything_is_written(tmp_path: Path, onnx_model: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("only\ntwo\n")
    with pytest.raises(LabelsError, match="2 labels but the model scores 4 classes"):
        build_repository(onnx_model, _options(tmp_path, labels=bad))
    assert snapshot(tmp_path / "repo") == {}


@pytest.mark.parametrize(("content", "message"), [("", "empty"), ("a\n\nb\nc\n", "blank lines")])
def test_bad_labels_files_are_refused(tmp_path: Path, onnx_model: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.txt"
    path.write_text(content)
    with pytest.raises(LabelsError, match=message):
        build_repository(onnx_model, _options(tmp_path, labels=path))


def test_missing_source_is_a_conversion_error(tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="no such file"):
        build_repository(tmp_path / "nope.onnx", _options(tmp_path))
    assert snapshot(tmp_path / "repo") == {}


def test_non_image_model_is_refused_with_a_hint_to_use_no_ensemble(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Softmax", ["x"], ["y"], axis=-1)],
        "tabular",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 10])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.save(model, tmp_path / "tabular.onnx")
    with pytest.raises(SignatureError, match="--no-ensemble"):
        build_repository(tmp_path / "tabular.onnx", _options(tmp_path))
    result = build_repository(tmp_path / "tabular.onnx", _options(tmp_path, ensemble=False))
    assert result.models == ("tiny",) and result.parity is not None and result.parity.passed


def test_bad_names_and_options_are_refused_up_front(tmp_path: Path) -> None:
    with pytest.raises(InvalidNameError):
        BuildOptions(name="../escape", repository=tmp_path)
    with pytest.raises(BuildOptionsError, match="--target"):
        BuildOptions(name="m", target="tensorflow")
    with pytest.raises(BuildOptionsError, match="--keep"):
        BuildOptions(name="m", keep=0)
    with pytest.raises(BuildOptionsError, match="not found"):
        BuildOptions(name="m", samples=(tmp_path / "missing.jpg",))


def test_an_nchw_model_marks_its_input_nchw_and_has_the_preprocessor_emit_nchw(tmp_path: Path) -> None:
    model = make_onnx_classifier(tmp_path / "nchw.onnx", layout="NCHW", size=24)
    build_repository(model, _options(tmp_path))
    classifier = parse_config((tmp_path / "repo" / "tiny_classifier" / "config.pbtxt").read_text())
    assert classifier.input[0].format == classifier.input[0].FORMAT_NCHW
    assert list(classifier.input[0].dims) == [3, 24, 24]
    preprocess = parse_config((tmp_path / "repo" / "tiny_preprocess" / "config.pbtxt").read_text())
    assert preprocess.parameters["layout"].string_value == "NCHW"
    assert list(preprocess.output[0].dims) == [3, 24, 24]


def test_a_staged_model_copy_that_does_not_load_fails_the_build_and_changes_nothing(
    tmp_path: Path, onnx_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    build_repository(onnx_model, _options(tmp_path))
    before = snapshot(tmp_path / "repo")
    real_copy = publish_module.shutil.copyfile

    def copy_cut_short(source: str, target: str) -> str:
        real_copy(source, target)
        if Path(target).name == "model.onnx":  # the file the parity gate passed is not this one
            Path(target).write_bytes(Path(target).read_bytes()[:200])
        return target

    monkeypatch.setattr(publish_module.shutil, "copyfile", copy_cut_short)
    with pytest.raises(PublishError, match=r"tiny_classifier version 2: model\.onnx does not load"):
        build_repository(onnx_model, _options(tmp_path))
    assert snapshot(tmp_path / "repo") == before
