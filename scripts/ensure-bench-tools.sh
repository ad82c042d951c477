#!/usr/bin/env bash
# The peers `npm run bench` measures the saga against: the AWS CLI and rclone, from Debian's
# packages when missing (run as npm's `prebench`), so that no row of the throughput table is empty
# because a tool was not installed. Without apt-get or root, it names what is missing and goes on:
# the bench then leaves those columns out.
set -euo pipefail

missing=()
command -v aws >/dev/null 2>&1 || missing+=(awscli)
command -v rclone >/dev/null 2>&1 || missing+=(rclone)
[ ${#missing[@]} -eq 0 ] && exit 0
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  echo "ensure-bench-tools: installing ${missing[*]} (Debian packages)" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}") >&2
else
  echo "ensure-bench-tools: ${missing[*]} missing and not installable here; their bench columns stay empty" >&2
fi
