#!/bin/sh
# SageMaker entry point: Triton with only its SageMaker front end, on a tritonkit repository.
#
# SageMaker runs `docker run IMAGE serve` and then talks HTTP to port 8080 (SAGEMAKER_BIND_TO_PORT
# on multi-container endpoints): GET /ping, POST /invocations. Triton answers /invocations with
# the model named by SAGEMAKER_TRITON_DEFAULT_MODEL_NAME (the ensemble, e.g. "flowers"); a
# request body is a KServe v2 inference request (JSON, or binary+json with the
# Inference-Header-Content-Length header).
#
# Triton binds the SageMaker port on all interfaces (it has no address option for it); in
# SageMaker the container's network is private to the endpoint. Do not publish that port
# beyond a trusted network anywhere else.
#
# Environment:
#   SAGEMAKER_TRITON_DEFAULT_MODEL_NAME  model for /invocations (required when the repository
#                                        holds more than one model, which a tritonkit one does)
#   SAGEMAKER_MODEL_REPOSITORY           default /opt/ml/model
#   SAGEMAKER_BIND_TO_PORT               default 8080
#   TRITONSERVER                         the server binary, default tritonserver
# Extra arguments after `serve` are passed to tritonserver.
set -eu

if [ "${1:-}" = "serve" ]; then
    shift
fi

if [ -z "${SAGEMAKER_TRITON_DEFAULT_MODEL_NAME:-}" ]; then
    echo "tritonkit-sagemaker-serve: set SAGEMAKER_TRITON_DEFAULT_MODEL_NAME to the model that" \
        "answers /invocations (the ensemble's name)" >&2
    exit 2
fi

export PYTHONDONTWRITEBYTECODE=1
exec "${TRITONSERVER:-tritonserver}" \
    --model-repository="${SAGEMAKER_MODEL_REPOSITORY:-/opt/ml/model}" \
    --allow-sagemaker=true \
    --sagemaker-port="${SAGEMAKER_BIND_TO_PORT:-8080}" \
    --allow-http=false \
    --allow-grpc=false \
    --allow-metrics=false \
    --model-control-mode=none \
    "$@"
