#!/usr/bin/env bash
# tcpsteer explain: decisions for a configuration and a proxy's identity, the same refusal line the
# module logs in Envoy, and one clear line (exit 2) for every kind of bad input.
# Usage: explain_cli_test.sh TCPSTEER SELECTION_CONFIG
set -u
tool=$1 selection=$2
# shellcheck source-path=SCRIPTDIR source=../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"

billing=(--namespace billing --workload ledger --service-account ledger --label app=ledger --label tier=web)
out=$("$tool" explain --config "$selection" "${billing[@]}" \
  10.244.1.7:40000,93.184.216.34:443,api.github.com 10.244.1.7:40001,10.1.2.3:443 \
  10.244.1.7:40001,10.96.0.1:443 10.244.1.7:40001,192.0.2.9:8080 10.244.1.7:40001,192.0.2.9:22)
status=$?
check "explain exits 0 for a valid configuration" "$status"
grep -qx "rules for this proxy: billing-internal, github, legacy, billing-rest" <<<"$out"
check "the rules that apply to the proxy are listed (workload rules of other proxies are not)" $?
grep -q "sni=api.github.com: egress1 (outbound|443||egress1.default.svc.cluster.local), rule github" <<<"$out"
check "an SNI rule: target, cluster and rule" $?
grep -q "10.1.2.3:443: audit (outbound|443||audit.tools.svc.cluster.local), rule billing-internal" <<<"$out"
check "a destination CIDR rule" $?
grep -q "10.96.0.1:443: .*rule billing-rest" <<<"$out"
check "an excluded destination falls through to the next rule" $?
grep -q "192.0.2.9:8080: egress2 (outbound|8080||egress2.default.svc.cluster.local), rule legacy" <<<"$out"
check "a destination + port range rule renders the port" $?
grep -q "192.0.2.9:22: .*rule billing-rest" <<<"$out"
check "a port outside the range does not match" $?

metadata=$work/metadata.json
echo '{"NAMESPACE": "shop", "WORKLOAD_NAME": "cart", "SERVICE_ACCOUNT": "cart", "LABELS": {"tier": "batch"}}' >"$metadata"
out=$("$tool" explain --config "$selection" --metadata "$metadata" --json 10.0.0.4:1,1.1.1.1:443)
grep -q '"rules_for_this_proxy":\["shop","github","legacy","batch"\]' <<<"$out" &&
  grep -q '"rule":"shop","sni":"","source":"10.0.0.4:1","target":"egress2"' <<<"$out"
check "--metadata (Istio node metadata JSON) and --json" $?

printf '# sidecar traffic\n10.0.0.3:1 93.184.216.34:443 www.github.com\n\n10.0.0.3:2\t1.1.1.1:443\n' >"$work/connections"
out=$("$tool" explain --config <(echo standalone) --connections "$work/connections")
[ "$(grep -c ' -> ' <<<"$out")" -eq 2 ] && grep -q "no rule matched: last octet 3 modulo 2" <<<"$out"
check "a connections file: comments, blank lines and tabs" $?
out=$("$tool" explain --config <(echo '{"mode": "dry-run"}') 10.0.0.3:1,1.1.1.1:443)
grep -q "(dry-run: not applied)" <<<"$out"
check "dry-run is said" $?
out=$("$tool" explain --config <(echo '{"on_unroutable": "close"}') unix:/x,1.1.1.1:443)
grep -q ": unroutable, source address is malformed; closed" <<<"$out"
check "an unroutable source and the policy applied" $?
out=$("$tool" explain --config <(echo '{"preset": "standalone", "rules": [{"ports": 443, "target": 0}, {"ports": 443, "sni": "a.example.com", "target": 1}]}') 10.0.0.3:1,1.1.1.1:443)
grep -q "^warning: rules\[1\] (rule1) can never match: rules\[0\] (rule0) matches every connection it would$" <<<"$out"
check "a shadowed rule is a warning" $?

# Refusals: the module's own line, exit 1.
out=$("$tool" explain --config "$selection" 10.0.0.1:1,1.1.1.1:443)
status=$?
[ "$status" -eq 1 ] && [ "$out" = "[TCP WASM] invalid configuration at 'rules[0].namespace': this proxy has no node.metadata.NAMESPACE; expected a proxy with Istio's node metadata (a sidecar or gateway), or no workload conditions" ]
check "workload rules without the proxy's metadata: the module's line, exit 1" $?
out=$("$tool" explain --config <(echo '{"rules": [{"source_cidr": "10.1.0.0/8", "target": 0}]}'))
[ $? -eq 1 ] && grep -qx "\[TCP WASM\] invalid configuration at 'rules\[0\].source_cidr': not a valid CIDR (host bits must be zero); expected an IPv4 or IPv6 prefix such as \"10.244.0.0/16\" or \"fd00::/8\"" <<<"$out"
check "an invalid configuration: the module's line, exit 1" $?

# Bad arguments: one line on stderr, exit 2, nothing on stdout.
bad() {  # bad NAME EXPECTED-FRAGMENT ARGS...
  local name=$1 fragment=$2
  shift 2
  local err
  err=$("$tool" explain "$@" 2>&1 >/dev/null)
  local status=$?
  [ "$status" -eq 2 ] && [ "$(wc -l <<<"$err")" -eq 1 ] && grep -qF -- "$fragment" <<<"$err"
  check "refused: $name" $?
}
bad "a connection without a destination" "is not SRC,DST[,SNI]" --config <(echo istio) 10.0.0.1:1
bad "a label without =" "--label 'app' is not KEY=VALUE" --config <(echo istio) --label app
bad "metadata that is not an object" "--metadata is not a JSON object" --config <(echo istio) --metadata <(echo '[1]')
bad "a metadata value that is not a string" "--metadata NAMESPACE is not a string" --config <(echo istio) --metadata <(echo '{"NAMESPACE": 1}')
printf '10.0.0.1:1 1.1.1.1:443\n10.0.0.1:1\n' >"$work/broken"
bad "a connections line, with its number" "broken:2: not 'SOURCE DESTINATION [SNI]'" --config <(echo istio) --connections "$work/broken"
bad "a directory as the configuration" "not a readable file" --config "$work"
bad "a missing file" "not a readable file" --config "$work/none"
head -c $((17 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$work/huge"
bad "a connections file over 16 MiB" "over 16 MiB" --config <(echo istio) --connections "$work/huge"
"$tool" explain 10.0.0.1:1,1.1.1.1:443 >/dev/null 2>&1
[ $? -eq 2 ]
check "refused: no --config" $?

# The README's example: its configuration and command give exactly the output it shows.
readme=$(dirname "$0")/../../README.md
python3 - "$readme" "$work" <<'PY' >"$work/readme-check" 2>&1
import re, sys
text = open(sys.argv[1]).read().split("## Choosing egress", 1)[1]
config = re.search(r"```json\n(.*?)```", text, re.S).group(1)
console = re.search(r"```console\n(.*?)```", text, re.S).group(1)
open(sys.argv[2] + "/rules.json", "w").write(config)
lines = console.splitlines()
command = lines[0][2:]
i = 1
while command.endswith("\\"):
    command = command[:-1] + lines[i].strip()
    i += 1
open(sys.argv[2] + "/readme-command", "w").write(command)
open(sys.argv[2] + "/readme-expected", "w").write("\n".join(lines[i:]) + "\n")
PY
command=$(sed "s|^tcpsteer |$tool |; s| rules.json | $work/rules.json |" "$work/readme-command")
eval "$command" >"$work/readme-got" 2>&1
diff "$work/readme-expected" "$work/readme-got"
check "the README's explain example prints what the README shows" $?

finish explain_cli
