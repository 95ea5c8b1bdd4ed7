"""Server and model status: identical typed objects over HTTP and gRPC; load and unload."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tritonkit.client import (
    ModelConfig,
    ModelLoadFailed,
    ModelNotFound,
    ModelNotReady,
    TritonClient,
)
from tritonkit.server import EmbeddedServer

pytestmark = pytest.mark.integration


@pytest.fixture
def both(triton: EmbeddedServer) -> Iterator[tuple[TritonClient, TritonClient]]:
    with TritonClient(triton.http_url) as http, TritonClient(triton.grpc_url) as grpc:
        yield http, grpc


def test_server_metadata_is_identical_over_both_protocols(both: tuple[TritonClient, TritonClient]) -> None:
    http, grpc = both
    assert http.server_metadata() == grpc.server_metadata()
    assert "classification" in http.server_metadata().extensions


@pytest.mark.parametrize("model", ["add_sub", "identity_bytes", "tiny_classifier", "scores"])
def test_metadata_and_config_are_identical_over_both_protocols(
    both: tuple[TritonClient, TritonClient], model: str
) -> None:
    http, grpc = both
    assert http.model_metadata(model) == grpc.model_metadata(model)
    http_config, grpc_config = http.model_config(model), grpc.model_config(model)
    assert http_config == grpc_config
    assert http_config.raw == grpc_config.raw


def test_config_is_typed(client: TritonClient) -> None:
    config = client.model_config("add_sub")
    assert config.max_batch_size == 8 and config.batches and config.dynamic_batching
    assert [(t.name, t.datatype, t.dims) for t in config.inputs] == [
        ("INPUT0", "FP32", (16,)),
        ("INPUT1", "FP32", (16,)),
    ]
    ensemble = client.model_config("tiny_classifier")
    assert ensemble.is_ensemble
    assert [s.model_name for s in ensemble.ensemble_steps] == [
        "tiny_classifier_preprocess",
        "tiny_classifier_classifier",
    ]
    assert ensemble.outputs[0].label_filename == "labels.txt"
    assert ensemble.inputs[0].datatype == "BYTES"


def test_statistics_are_identical_over_both_protocols(both: tuple[TritonClient, TritonClient]) -> None:
    http, grpc = both
    http.infer("scores", np.ones((2, 4), np.float32))
    by_http, by_grpc = http.statistics("scores"), grpc.statistics("scores")
    assert by_http == by_grpc
    assert by_http[0].inference_count >= 2 and by_http[0].success.count >= 1
    assert {s.name for s in http.statistics()} == {s.name for s in grpc.statistics()}


def test_repository_index_lists_models_with_their_state(both: tuple[TritonClient, TritonClient]) -> None:
    http, grpc = both
    index = http.repository_index()
    assert index == grpc.repository_index()
    states = {m.name: m.state for m in index}
    assert states["add_sub"] == "READY"
    assert "broken" in states  # in the repository, never loaded
    assert all(m.state == "READY" for m in http.repository_index(ready_only=True))


def test_unknown_model_raises_model_not_found(client: TritonClient) -> None:
    for call in (
        lambda: client.model_metadata("no_such_model"),
        lambda: client.model_config("no_such_model"),
        lambda: client.statistics("no_such_model"),
        lambda: client.infer("no_such_model", np.zeros(1)),
    ):
        with pytest.raises(ModelNotFound, match="no_such_model") as caught:
            call()
        assert caught.value.protocol == client.protocol


def test_unloaded_model_is_not_ready_and_reloads_with_a_config_override(client: TritonClient) -> None:
    original = client.model_config("loadable")
    try:
        client.unload_model("loadable")
        assert not client.is_model_ready("loadable")
        with pytest.raises((ModelNotReady, ModelNotFound)):
            client.infer("loadable", {"INPUT0": np.zeros(16), "INPUT1": np.zeros(16)})
        # Triton filled in preferred_batch_size [8]; it must not exceed the new max_batch_size
        override = dict(original.raw, max_batch_size=4, dynamic_batching={})
        client.load_model("loadable", config=override)
        assert client.is_model_ready("loadable")
        assert client.model_config("loadable").max_batch_size == 4
        # the cached metadata went with the reload: a batch of 6 is now split in 4 + 2
        out = client.infer("loadable", {"INPUT0": np.ones((6, 16)), "INPUT1": np.ones((6, 16))})
        assert out["OUTPUT0"].shape == (6, 16)
    finally:
        client.load_model("loadable", config=original)
    assert isinstance(client.model_config("loadable"), ModelConfig)
    assert client.model_config("loadable").max_batch_size == 8


def test_failed_load_surfaces_the_models_own_reason(client: TritonClient) -> None:
    try:
        with pytest.raises(ModelLoadFailed) as caught:
            client.load_model("broken")
        assert "weights file missing" in str(caught.value)
        assert caught.value.reason and "weights file missing" in caught.value.reason
    finally:
        client.unload_model("broken")


def test_loading_a_model_the_repository_lacks_is_model_not_found(client: TritonClient) -> None:
    with pytest.raises(ModelNotFound, match="not in the server's model repository"):
        client.load_model("no_such_model")
