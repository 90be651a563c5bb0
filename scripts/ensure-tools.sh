#!/usr/bin/env bash
# Installs what the tests need beside Go: xmllint (validates requests against Logius'
# XSD) and the Temporal CLI (dev server and Web UI). Idempotent; fails loudly.
set -euo pipefail

if ! command -v xmllint >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "ensure-tools: installing xmllint (libxml2-utils)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q libxml2-utils >/dev/null 2>&1 || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q libxml2-utils >/dev/null; }
  else
    echo "ensure-tools: xmllint is missing: apt-get install -y libxml2-utils" >&2
    exit 1
  fi
fi

temporal_bin=$(go env GOPATH)/bin/temporal
if ! command -v temporal >/dev/null 2>&1 && [ ! -x "$temporal_bin" ]; then
  echo "ensure-tools: installing the Temporal CLI v1.5.1 from the Go module proxy (takes a few minutes, once)" >&2
  go install github.com/temporalio/cli/cmd/temporal@v1.5.1
fi
