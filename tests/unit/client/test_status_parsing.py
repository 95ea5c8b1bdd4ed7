"""HTTP JSON and gRPC protobuf answers become the same typed objects."""

from __future__ import annotations

from google.protobuf import json_format
from tritonclient.grpc import model_config_pb2, service_pb2

from tritonkit.client._status import (
    parse_model_config,
    parse_model_metadata,
    parse_repository_index,
    parse_server_metadata,
    parse_statistics,
)

# Recorded from Triton 2.51 over HTTP.
HTTP_CONFIG = {
    "name": "pipe",
    "platform": "ensemble",
    "backend": "",
    "max_batch_size": 8,
    "input": [
        {"name": "IMAGE", "data_type": "TYPE_STRING", "format": "FORMAT_NONE", "dims": [1], "optional": False}
    ],
    "output": [{"name": "SCORES", "data_type": "TYPE_FP32", "dims": [3], "label_filename": "labels.txt"}],
    "ensemble_scheduling": {
        "step": [
            {
                "model_name": "pre",
                "model_version": -1,
                "input_map": {"IMAGE": "IMAGE"},
                "output_map": {"P": "p"},
            },
            {
                "model_name": "cls",
                "model_version": -1,
                "input_map": {"P": "p"},
                "output_map": {"SCORES": "SCORES"},
            },
        ]
    },
    "instance_group": [],
    "cc_model_filenames": {},
    "a_field_from_a_newer_triton": 1,
}
HTTP_STATS = {
    "model_stats": [
        {
            "name": "m",
            "version": "1",
            "last_inference": 1700000000000,
            "inference_count": 12,
            "execution_count": 4,
            "inference_stats": {
                "success": {"count": 4, "ns": 8000000},
                "fail": {"count": 1, "ns": 10},
                "queue": {"count": 4, "ns": 400},
                "compute_input": {"count": 4, "ns": 40},
                "compute_infer": {"count": 4, "ns": 4000},
                "compute_output": {"count": 4, "ns": 4},
                "cache_hit": {"count": 0, "ns": 0},
                "cache_miss": {"count": 0, "ns": 0},
            },
            "response_stats": {},
            "batch_stats": [
                {
                    "batch_size": 4,
                    "compute_input": {"count": 2, "ns": 2},
                    "compute_infer": {"count": 2, "ns": 20},
                    "compute_output": {"count": 2, "ns": 2},
                },
                {
                    "batch_size": 2,
                    "compute_input": {"count": 2, "ns": 1},
                    "compute_infer": {"count": 2, "ns": 10},
                    "compute_output": {"count": 2, "ns": 1},
                },
            ],
            "memory_usage": [],
        }
    ]
}


def _as_grpc(raw: dict, message: type) -> object:
    return json_format.ParseDict(raw, message(), ignore_unknown_fields=True)


def test_config_is_the_same_from_json_and_from_protobuf() -> None:
    by_http = parse_model_config(HTTP_CONFIG)
    response = service_pb2.ModelConfigResponse(config=_as_grpc(HTTP_CONFIG, model_config_pb2.ModelConfig))
    by_grpc = parse_model_config(response)
    assert by_http == by_grpc and by_http.raw == by_grpc.raw
    assert by_http.is_ensemble and by_http.batches
    assert by_http.inputs[0].datatype == "BYTES" and by_http.outputs[0].label_filename == "labels.txt"
    assert [s.model_name for s in by_http.ensemble_steps] == ["pre", "cls"]
    assert by_http.ensemble_steps[0].model_version == -1
    assert parse_model_config(by_http.raw) == by_http  # to_json()/raw round-trips


def test_statistics_are_the_same_from_json_and_from_protobuf() -> None:
    by_http = parse_statistics(HTTP_STATS)
    by_grpc = parse_statistics(_as_grpc(HTTP_STATS, service_pb2.ModelStatisticsResponse))
    assert by_http == by_grpc
    (stats,) = by_http
    assert stats.inference_count == 12 and stats.success.mean_ms == 2.0 and stats.fail.count == 1
    assert [b.batch_size for b in stats.batches] == [2, 4]


def test_metadata_index_and_server_are_the_same_from_json_and_from_protobuf() -> None:
    metadata = {
        "name": "m",
        "versions": ["1", "2"],
        "platform": "python",
        "inputs": [{"name": "X", "datatype": "FP32", "shape": [-1, 3]}],
        "outputs": [{"name": "Y", "datatype": "FP32", "shape": [-1, 3]}],
    }
    assert parse_model_metadata(metadata) == parse_model_metadata(
        _as_grpc(metadata, service_pb2.ModelMetadataResponse)
    )
    assert parse_model_metadata(metadata).inputs[0].shape == (-1, 3)
    index = [
        {"name": "a", "version": "1", "state": "READY"},
        {"name": "b", "state": "UNAVAILABLE", "reason": "boom"},
    ]
    assert parse_repository_index(index) == parse_repository_index(
        _as_grpc({"models": index}, service_pb2.RepositoryIndexResponse)
    )
    assert (
        parse_repository_index(index)[1].reason == "boom" and parse_repository_index(index)[1].version is None
    )
    server = {"name": "triton", "version": "2.51.0", "extensions": ["classification"]}
    assert parse_server_metadata(server) == parse_server_metadata(
        _as_grpc(server, service_pb2.ServerMetadataResponse)
    )
