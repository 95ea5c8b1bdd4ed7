#!/usr/bin/env bash
# Install the Debian packages that tests/deploy runs, when they are missing. Idempotent and quiet;
# Debian 12. As root it installs them; otherwise through `sudo -n` (no password prompt) when that
# is allowed; otherwise it stops and prints the exact command to run.
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
    mapfile -t packages < <(printf '%s\n' "${missing[@]}" | sort -u)
    install_command="apt-get install -y --no-install-recommends ${packages[*]}"
    if [ "$(id -u)" = 0 ]; then
        as_root() { "$@"; }
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root() { sudo -n "$@"; }
    else
        {
            echo "ci-system-deps: missing Debian packages: ${packages[*]} (for tests/deploy)."
            echo "ci-system-deps: this user is not root and cannot use sudo without a password; install them with:"
            echo "    sudo apt-get update && sudo $install_command"
        } >&2
        exit 1
    fi
    # Installing the prometheus package must not start a Prometheus server on this machine.
    policy=/usr/sbin/policy-rc.d
    created_policy=0
    if [ ! -e "$policy" ]; then
        as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy" && created_policy=1
    fi
    trap '[ "$created_policy" = 1 ] && as_root rm -f "$policy"' EXIT
    log="$(mktemp)"
    if ! { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${packages[@]}"; } >"$log" 2>&1; then
        cat "$log" >&2
        rm -f "$log"
        echo "ci-system-deps: installing ${packages[*]} failed (above); install them with: $install_command" >&2
        exit 1
    fi
    rm -f "$log"
fi

if ! command -v kubectl >/dev/null 2>&1; then
    echo "ci-system-deps: kubectl is missing (needed with kustomize >= v4 for tests/deploy/test_kubernetes.py)" >&2
fi
