#!/usr/bin/env bash
# Re-encodes every golden/*.txt with protoc and compares with the checked-in golden/*.bin.
set -euo pipefail
protoc=$1
fixtures=$2
status=0
for text in "$fixtures"/golden/*.txt; do
  expected=${text%.txt}.bin
  if ! cmp -s <("$protoc" --encode=envoy.source.extensions.common.wasm.SetEnvoyFilterStateArguments \
      --proto_path="$fixtures" "$fixtures/set_envoy_filter_state.proto" < "$text") "$expected"; then
    echo "golden vector $(basename "$expected") differs from protoc's encoding of $(basename "$text")" >&2
    status=1
  fi
done
[ "$status" -eq 0 ] && echo "golden vectors: all match protoc"
exit "$status"
