#!/usr/bin/env bash
# Validates the Kubernetes manifests against the API schemas, offline
# (kubernetes-validate ships the schemas). Installs the validator if needed.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v kubernetes-validate >/dev/null 2>&1; then
  python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate
fi
kubernetes-validate --strict --kubernetes-version 1.33.0 ./*.yaml
