#!/usr/bin/env bash
# Install the Debian packages that tests/deploy runs, when they are missing. Idempotent and quiet;
# run as root (CI) on Debian 12.
#
#   prometheus      prometheus + promtool 2.42: config check, live scrape of the embedded Triton
#   docker-compose  Compose v1 (1.29): `docker-compose config` validates without a Docker engine
#
# kubectl (with its built-in kustomize v5) comes with the machine image. Debian 12's own
# kubernetes-client (kubectl 1.20, kustomize v2) is too old for the kustomize components in
# deploy/k8s, so it is not a fallback: without kubectl the Kubernetes tests fail and say so.
set -euo pipefail

declare -A wanted=([prometheus]=prometheus [promtool]=prometheus [docker-compose]=docker-compose)
missing=()
for tool in "${!wanted[@]}"; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("${wanted[$tool]}")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "ci-system-deps: run as root to install: ${missing[*]}" >&2
        exit 1
    fi
    # Installing the prometheus package must not start a Prometheus server on this machine.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && created_policy=1
    fi
    trap '[ "$created_policy" = 1 ] && rm -f "$policy"' EXIT
    export DEBIAN_FRONTEND=noninteractive
    log="$(mktemp)"
    # shellcheck disable=SC2046 # one word per package
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        $(printf '%s\n' "${missing[@]}" | sort -u); } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        exit 1
    fi
    rm -f "$log"
fi

if ! command -v kubectl >/dev/null 2>&1; then
    echo "ci-system-deps: kubectl is missing (needed with kustomize >= v4 for tests/deploy/test_kubernetes.py)" >&2
fi
