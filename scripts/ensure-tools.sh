#!/usr/bin/env bash
# Installs what the tests need beside Go: xmllint (validates requests against Logius'
# XSD), zeep and xmlsec for Python (the interop test), the Temporal CLI (dev server and
# Web UI), and the linters `make lint` runs:
# staticcheck and Temporal's workflowcheck, at pinned versions. Idempotent; fails loudly.
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

# zeep and xmlsec for Python: digipoort/interop runs an independent SOAP stack against the
# simulator. Debian's packages install them for /usr/bin/python3, which need not be the
# python3 first on PATH (pyenv, a virtualenv); the test tries both, and so does this.
interop_python() {
  local py
  for py in "$(command -v python3 || true)" /usr/bin/python3; do
    if [ -n "$py" ] && [ -x "$py" ] && "$py" -c 'import zeep, xmlsec, lxml' >/dev/null 2>&1; then
      return 0
    fi
  done
  return 1
}
if ! interop_python; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "ensure-tools: installing zeep and xmlsec for Python (python3-zeep, python3-xmlsec)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-zeep python3-xmlsec >/dev/null 2>&1 || {
      apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-zeep python3-xmlsec >/dev/null; }
    if ! interop_python; then
      echo "ensure-tools: python3-zeep and python3-xmlsec are installed but /usr/bin/python3 cannot import zeep, xmlsec and lxml" >&2
      exit 1
    fi
  else
    echo "ensure-tools: zeep/xmlsec for Python are missing: apt-get install -y python3-zeep python3-xmlsec" >&2
    exit 1
  fi
fi

temporal_bin=$(go env GOPATH)/bin/temporal
if ! command -v temporal >/dev/null 2>&1 && [ ! -x "$temporal_bin" ]; then
  echo "ensure-tools: installing the Temporal CLI v1.5.1 from the Go module proxy (takes a few minutes, once)" >&2
  go install github.com/temporalio/cli/cmd/temporal@v1.5.1
fi

# install_go_tool NAME PACKAGE VERSION installs PACKAGE@VERSION into Go's bin directory
# unless NAME there was already built from that version.
gobin=$(go env GOBIN)
gobin=${gobin:-$(go env GOPATH)/bin}
install_go_tool() {
  local name=$1 pkg=$2 version=$3 built=
  if [ -x "$gobin/$name" ]; then
    built=$(go version -m "$gobin/$name" 2>/dev/null | awk '$1 == "mod" { print $3 }')
  fi
  if [ "$built" = "$version" ]; then
    return
  fi
  echo "ensure-tools: installing $name $version from the Go module proxy" >&2
  go install "$pkg@$version"
}

# staticcheck v0.8.2 and workflowcheck v0.6.0 (the newest of each) build with Go 1.26.
install_go_tool staticcheck honnef.co/go/tools/cmd/staticcheck v0.8.2
install_go_tool workflowcheck go.temporal.io/sdk/contrib/tools/workflowcheck v0.6.0
