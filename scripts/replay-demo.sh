#!/usr/bin/env bash
# Runs the built tcpsteer.wasm in the host emulator with the seed's configuration and prints, for each
# source address, the cluster the filter chose. Exits non-zero if any row breaks the even/odd rule.
set -euo pipefail
host=${1:?usage: replay-demo.sh TCPSTEER_HOST MODULE}
module=${2:?usage: replay-demo.sh TCPSTEER_HOST MODULE}

sources=("10.244.0.10:40000" "10.244.0.11:40001" "10.244.1.36:40002" "10.244.1.37:40003"
         "[fd00:10:244::2a]:40004" "[fd00:10:244::2b]:40005")
conns=()
for source in "${sources[@]}"; do conns+=(--conn "$source,93.184.216.34:443"); done
conns+=(--conn "not-an-address,93.184.216.34:443")

events=$("$host" replay "$module" --root-id tcp_wasm_filter --log-level info "${conns[@]}")
printf '%-26s %-52s %s\n' "source" "cluster chosen by tcpsteer.wasm" "expected"
status=0
while IFS=$'\t' read -r source cluster; do
  expected="(tcp_proxy's own cluster)"
  if [[ $source =~ ([0-9a-f]+)\]?:[0-9]+$ ]]; then
    last=${BASH_REMATCH[1]}
    if [[ $source == \[* ]]; then value=$((16#${last: -2})); else value=$((10#$last)); fi
    if (( value % 2 == 0 )); then egress=egress1; else egress=egress2; fi
    expected="outbound|443||$egress.default.svc.cluster.local"
  fi
  [ "$cluster" = "null" ] && cluster="(tcp_proxy's own cluster)"
  mark=ok
  if [ "$cluster" != "$expected" ]; then mark=MISMATCH; status=1; fi
  printf '%-26s %-52s %s\n' "$source" "$cluster" "$mark"
done < <(jq -r 'select(.event == "connection") | [.source, (.cluster // "null")] | @tsv' <<<"$events")
echo
echo "filter log lines:"
jq -r 'select(.event == "log") | "  [\(.level)] \(.message)"' <<<"$events"
exit "$status"
