#!/usr/bin/env bash
# scripts/kind-demo.sh without a cluster: --dry-run prints the expected command sequence for each
# variant; usage errors say what was wrong; `verify` judges real logs: the client's lines come from the
# real demo-client talking to a real egress-server, the filter's lines from the real tcpsteer.wasm
# (configured with the EnvoyFilter's own configuration) wrapped in istio-proxy's log format.
set -uo pipefail
repo=$1
server=$2
client=$3
host=$4
module=$5
script=$repo/scripts/kind-demo.sh
# shellcheck source-path=SCRIPTDIR source=../lib/harness.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/harness.sh"
# in_order FILE PATTERN...: every fixed-string pattern occurs on a "+ " line, in this order.
in_order() {
  local file=$1 line=0 next
  shift
  for pattern in "$@"; do
    next=$(grep -nF -- "$pattern" "$file" | grep -E '^[0-9]+:\+ ' | awk -F: -v after="$line" '$1 > after {print $1; exit}')
    if [ -z "$next" ]; then echo "  missing (after line $line): $pattern"; return 1; fi
    line=$next
  done
}

# --- dry runs ---------------------------------------------------------------------------------------
epoch=$(git -C "$repo" log -1 --format=%ct)
bash "$script" up --dry-run >"$work/up.txt" 2>&1
check dry-run-up-exit-0 $?
in_order "$work/up.txt" \
  "+ make wasm" \
  "+ docker build --provenance=false --sbom=false --build-arg SOURCE_DATE_EPOCH=$epoch -f deploy/docker/egress-server.Dockerfile -t tcpsteer/egress-server:0.1.0 ." \
  "+ docker build --provenance=false --sbom=false --build-arg SOURCE_DATE_EPOCH=$epoch -f deploy/docker/demo-client.Dockerfile -t tcpsteer/demo-client:0.1.0 ." \
  "+ kind create cluster --config deploy/kind/cluster.yaml --name tcpsteer" \
  "+ istioctl install --set profile=demo -y" \
  "+ kubectl -n istio-system rollout status deployment/istiod" \
  "+ docker save tcpsteer/egress-server:0.1.0 -o" "egress-server.tar --name tcpsteer" \
  "+ docker save tcpsteer/demo-client:0.1.0 -o" "demo-client.tar --name tcpsteer" \
  "+ kubectl apply -f deploy/k8s/client/00-namespace.yaml" \
  "+ openssl req -x509" \
  "create secret tls egress-tls" \
  "create configmap demo-ca --from-file=ca.crt=" \
  "create configmap tcpsteer-wasm --from-file=tcpsteer.wasm=build/wasm/filter/tcpsteer.wasm --dry-run=client -o yaml | kubectl apply --server-side --force-conflicts -f -" \
  "+ kubectl apply -f deploy/k8s/base/10-egress.yaml" \
  "+ kubectl apply -f deploy/k8s/base/20-serviceentry.yaml" \
  "+ kubectl apply -f deploy/k8s/base/40-networkpolicy.yaml" \
  "+ kubectl -n tcpsteer delete --ignore-not-found wasmplugin/tcpsteer networkpolicy/demo-client-registry envoyfilter/tcpsteer-port80" \
  "+ kubectl apply -f deploy/k8s/envoyfilter/50-envoyfilter.yaml" \
  "+ kubectl apply -f deploy/k8s/client/30-demo-client.yaml" \
  "+ kubectl -n tcpsteer rollout restart deployment/egress1 deployment/egress2 deployment/demo-client" \
  "+ kubectl -n tcpsteer rollout status deployment/egress1" \
  "+ kubectl -n tcpsteer rollout status deployment/demo-client" \
  "+ kubectl -n tcpsteer get pods -l app=demo-client" \
  "+ kubectl -n tcpsteer logs POD -c istio-proxy" \
  "+ kubectl -n tcpsteer exec POD -c istio-proxy -- pilot-agent request GET stats/prometheus"
check dry-run-up-sequence $?
grep -q "^==> checking tools" "$work/up.txt" && grep -q "^==> verify" "$work/up.txt"; check dry-run-banners $?
grep -v -- "delete --ignore-not-found" "$work/up.txt" | grep -qE '^\+ .*(wasmplugin|port80|plugin.Dockerfile|kustomization)'
[ $? -eq 1 ]; check dry-run-default-is-envoyfilter-only $?

bash "$script" up --dry-run --plugin wasmplugin --port80 --no-network-policies >"$work/up2.txt" 2>&1
in_order "$work/up2.txt" "+ kubectl apply -f deploy/k8s/base/20-serviceentry.yaml" \
  "+ kubectl apply -f deploy/k8s/port80/20-serviceentry.yaml" "+ kubectl apply -f deploy/k8s/port80/55-envoyfilter-port80.yaml" \
  "+ kubectl apply -f deploy/k8s/wasmplugin/50-wasmplugin.yaml" "+ kubectl apply -f deploy/k8s/client/30-demo-client.yaml" &&
  ! grep -q "+ kubectl apply -f deploy/k8s/base/40-networkpolicy.yaml" "$work/up2.txt" &&
  ! grep -q "envoyfilter/50-envoyfilter.yaml" "$work/up2.txt" &&
  in_order "$work/up2.txt" "+ kubectl -n tcpsteer delete --ignore-not-found envoyfilter/tcpsteer networkpolicy/demo-client-registry networkpolicy/demo-client-egress networkpolicy/egress-from-client-only" \
    "+ kubectl apply -f deploy/k8s/wasmplugin/50-wasmplugin.yaml"
check dry-run-wasmplugin-port80-no-policies $?

# Issue #13 (1): OCI without policies must not apply the registry policy alone (it would isolate the
# client from istiod and DNS).
bash "$script" up --dry-run --plugin wasmplugin-oci --no-network-policies >"$work/up4.txt" 2>&1
grep -q "skipping deploy/k8s/wasmplugin-oci/45-networkpolicy-registry.yaml (--no-network-policies)" "$work/up4.txt" &&
  ! grep -q "^+ kubectl apply .*45-networkpolicy-registry.yaml" "$work/up4.txt"
check dry-run-oci-without-policies-skips-registry-policy $?
# (3): a host without apt-get builds the module inside Docker, from plugin.Dockerfile's build stage.
mkdir -p "$work/noapt"
for tool in bash sed dirname basename mktemp rm grep sort head cat jq openssl make git; do
  ln -sf "$(command -v "$tool")" "$work/noapt/$tool"
done
PATH=$work/noapt "$work/noapt/bash" "$script" up --dry-run >"$work/up5.txt" 2>&1
in_order "$work/up5.txt" "+ docker build --provenance=false --sbom=false --build-arg SOURCE_DATE_EPOCH=$epoch -f deploy/docker/plugin.Dockerfile -t tcpsteer/plugin-build:0.1.0 --target module --output build/wasm/filter ." &&
  ! grep -q "^+ make wasm" "$work/up5.txt"
check dry-run-module-built-in-docker-without-apt $?
bash "$script" up --dry-run --module-build docker >"$work/up6.txt" 2>&1
grep -q -- "--target module --output build/wasm/filter" "$work/up6.txt"; check dry-run-module-build-docker $?
bash "$script" up --dry-run --module-build podman >"$work/e5.txt" 2>&1
[ $? -eq 1 ] && grep -q "module-build must be native or docker, not 'podman'" "$work/e5.txt"; check bad-module-build-exit-1 $?

KIND_DEMO_WORK=$work/oci bash "$script" up --dry-run --plugin=wasmplugin-oci >"$work/up3.txt" 2>&1
in_order "$work/up3.txt" "+ docker build --provenance=false --sbom=false --build-arg SOURCE_DATE_EPOCH=$epoch -f deploy/docker/plugin.Dockerfile -t tcpsteer/plugin:0.1.0 ." \
  "+ kubectl -n tcpsteer delete --ignore-not-found envoyfilter/tcpsteer envoyfilter/tcpsteer-port80" \
  "+ docker run -d --restart=always -p 127.0.0.1:5001:5000 --name kind-registry registry:2" \
  "+ docker push localhost:5001/tcpsteer/plugin:0.1.0" \
  "+ kubectl apply -f $repo/deploy/k8s/wasmplugin-oci/45-networkpolicy-registry.yaml" \
  "+ kubectl apply -f $work/oci/50-wasmplugin-oci.yaml" "+ kubectl apply -f $work/oci/30-demo-client.yaml"
check dry-run-wasmplugin-oci $?
# The rendered copies: the client tells istio-agent the registry is plain HTTP, the WasmPlugin points
# at the registry's address (a placeholder in a dry run) and carries a digest.
python3 - "$work/oci" <<'PY'
import json, sys, yaml
work = sys.argv[1]
client = [d for d in yaml.safe_load_all(open(f"{work}/30-demo-client.yaml")) if d and d["kind"] == "Deployment"][0]
config = json.loads(client["spec"]["template"]["metadata"]["annotations"]["proxy.istio.io/config"])
assert config == {"holdApplicationUntilProxyStarts": True,
                  "proxyMetadata": {"WASM_INSECURE_REGISTRIES": "REGISTRY_IP:5000"}}, config
plugin = yaml.safe_load(open(f"{work}/50-wasmplugin-oci.yaml"))
assert plugin["spec"]["url"] == "oci://REGISTRY_IP:5000/tcpsteer/plugin:0.1.0", plugin["spec"]["url"]
assert len(plugin["spec"]["sha256"]) == 64
PY
check dry-run-wasmplugin-oci-rendered-manifests $?

bash "$script" down --dry-run >"$work/down.txt" 2>&1
in_order "$work/down.txt" "+ kind delete cluster --name tcpsteer" "+ docker rm -f kind-registry"
check dry-run-down $?

# The CI workflow's modes (.github/workflows/kind.yml) are runs the script accepts, in dry-run.
modes=$(python3 -c 'import sys, yaml
flow = yaml.safe_load(open(sys.argv[1]))
for mode in flow["jobs"]["kind"]["strategy"]["matrix"]["mode"]:
    print(mode["name"] + "|" + mode["flags"] + "|" + mode["verify"])' "$repo/.github/workflows/kind.yml")
ok=0
while IFS='|' read -r name flags verify; do
  # shellcheck disable=SC2086  # the flags are words
  if ! bash "$script" up --dry-run $flags --module-build docker >"$work/ci-$name.txt" 2>&1 ||
    ! bash "$script" verify --dry-run $verify >>"$work/ci-$name.txt" 2>&1; then
    echo "  mode $name:"; tail -3 "$work/ci-$name.txt"; ok=1
  fi
done <<<"$modes"
[ "$(wc -l <<<"$modes")" -eq 6 ] && [ $ok -eq 0 ]; check ci-workflow-modes-dry-run $?

# The gateway variant: its namespaces, the TLS secret in internet, the stand-ins removed, the kustomize
# rendering applied, every rollout, then its own verify.
bash "$script" up --dry-run --egress gateways >"$work/gw.txt" 2>&1
in_order "$work/gw.txt" \
  "+ kubectl apply -f deploy/k8s/client/00-namespace.yaml" \
  "+ kubectl apply -f deploy/k8s/gateways/05-namespaces.yaml" \
  "+ kubectl -n internet create secret tls egress-tls" \
  "+ kubectl -n tcpsteer create configmap tcpsteer-wasm" \
  "+ kubectl -n tcpsteer delete --ignore-not-found deployment/egress1 deployment/egress2 service/egress1 service/egress2" \
  "+ kubectl kustomize deploy/k8s/gateways >" "+ kubectl apply -f" \
  "+ kubectl -n tcpsteer-egress rollout restart deployment/egress1 deployment/egress2" \
  "+ kubectl -n tcpsteer-egress rollout status deployment/egress2" \
  "+ kubectl -n internet rollout status deployment/standin" \
  "+ kubectl -n tcpsteer rollout status deployment/demo-client" \
  "+ kubectl -n tcpsteer-egress get pods -l istio=egress1" \
  "+ kubectl -n tcpsteer exec POD -c demo-client -- /usr/local/bin/demo-client --target=other.tcpsteer.example"
check dry-run-gateways $?
! grep -qE '^\+ kubectl apply -f deploy/k8s/(base|envoyfilter)/' "$work/gw.txt"; check dry-run-gateways-no-standins $?
# The stand-in variant removes the gateway variant's namespaces.
grep -q "^+ kubectl delete namespace --ignore-not-found tcpsteer-egress internet tcpsteer-b$" "$work/up.txt" &&
  grep -q "^+ kubectl -n istio-system delete --ignore-not-found envoyfilter/tcpsteer-failover$" "$work/up.txt"
check dry-run-standins-remove-gateway-namespaces $?
# The gateway variant removes the selection variant's extras.
grep -q "^+ kubectl delete namespace --ignore-not-found tcpsteer-b$" "$work/gw.txt" &&
  grep -q "^+ kubectl -n istio-system delete --ignore-not-found envoyfilter/tcpsteer-failover$" "$work/gw.txt"
check dry-run-gateways-remove-selection-extras $?

# The selection variant: both client namespaces get the CA and the module before the overlay is
# applied; both clients restart; verify stops egress1 and brings it back.
bash "$script" up --dry-run --egress selection >"$work/sel.txt" 2>&1
in_order "$work/sel.txt" \
  "+ kubectl apply -f deploy/k8s/gateways/05-namespaces.yaml" \
  "+ kubectl create namespace tcpsteer-b --dry-run=client -o yaml | kubectl apply -f -" \
  "+ kubectl label namespace tcpsteer-b istio-injection=enabled" \
  "+ kubectl -n tcpsteer create configmap tcpsteer-wasm" \
  "+ kubectl -n tcpsteer-b create configmap demo-ca" \
  "+ kubectl -n tcpsteer-b create configmap tcpsteer-wasm" \
  "+ kubectl kustomize deploy/k8s/selection >" "+ kubectl apply -f" \
  "+ kubectl -n tcpsteer rollout restart deployment/demo-client" \
  "+ kubectl -n tcpsteer-b rollout restart deployment/demo-client" \
  "+ kubectl -n tcpsteer-b rollout status deployment/demo-client" \
  "+ kubectl -n tcpsteer-b get pods -l app=demo-client" \
  "+ kubectl -n tcpsteer-egress scale deployment/egress1 --replicas=0" \
  "+ kubectl -n tcpsteer-egress scale deployment/egress1 --replicas=1"
check dry-run-selection $?
bash "$script" up --dry-run --egress selection --port80 >"$work/sel-bad.txt" 2>&1
[ $? -eq 1 ] && grep -q "kind-demo: --egress selection carries TLS only" "$work/sel-bad.txt"
check selection-refuses-port80 $?
refused=0
for combo in "--plugin wasmplugin" "--port80" "--no-network-policies"; do
  # shellcheck disable=SC2086  # the flags are words
  bash "$script" up --dry-run --egress gateways $combo >"$work/gw-bad.txt" 2>&1
  if [ $? -eq 1 ] && grep -q "kind-demo: --egress gateways" "$work/gw-bad.txt"; then
    refused=$((refused + 1))
  else
    echo "  accepted: $combo"
  fi
done
[ "$refused" -eq 3 ]; check gateways-refuse-standin-options $?
bash "$script" up --dry-run --egress proxies >"$work/gw-bad2.txt" 2>&1
[ $? -eq 1 ] && grep -q "egress must be standins, gateways or selection, not 'proxies'" "$work/gw-bad2.txt"; check bad-egress-exit-1 $?

# --- the OCI path with stand-in tools --------------------------------------------------------------------
# docker, kind, kubectl, istioctl and make replaced by scripts that log their arguments and answer what
# the script reads back: the digest is taken from a single manifest and an index is refused (#13, 2);
# a stopped registry is started, not re-created (8).
mkdir -p "$work/fake"
for tool in docker kind kubectl istioctl make; do
  cat >"$work/fake/$tool" <<FAKE
#!/usr/bin/env bash
echo "$tool \$*" >>"$work/fake/calls.log"
case "$tool \$*" in
  "docker version"*) echo 28.0.0 ;;
  "docker ps -aq"*) echo "\${FAKE_REGISTRY_ID:-}" ;;
  "docker inspect"*) echo 172.18.0.5 ;;
  "docker manifest inspect"*) echo "\$FAKE_MANIFEST" ;;
  "kind version"*) echo "kind v0.27.0 go1.23.4 linux/amd64" ;;
  "kind get clusters"*) echo tcpsteer ;;
  "kubectl version"*) echo "Client Version: v1.32.2" ;;
  "kubectl -n tcpsteer get pods"*) echo '{"items": []}' ;;
  "istioctl version"*) echo "client version: 1.26.2" ;;
esac
exit 0
FAKE
  chmod +x "$work/fake/$tool"
done
digest=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
FAKE_MANIFEST="{\"Descriptor\": {\"digest\": \"sha256:$digest\"}}" FAKE_REGISTRY_ID=3f2a KIND_DEMO_WORK=$work/oci-real \
  PATH="$work/fake:$PATH" bash "$script" up --plugin wasmplugin-oci >"$work/oci-real.txt" 2>&1
grep -q "sha256: \"$digest\"" "$work/oci-real/50-wasmplugin-oci.yaml" &&
  grep -q "url: oci://172.18.0.5:5000/tcpsteer/plugin:0.1.0" "$work/oci-real/50-wasmplugin-oci.yaml"
check oci-digest-from-single-manifest $?
grep -q "^docker start kind-registry$" "$work/fake/calls.log" && ! grep -q "^docker run -d" "$work/fake/calls.log"
check stopped-registry-started-not-recreated $?
: >"$work/fake/calls.log"
FAKE_MANIFEST='[{"Descriptor": {"digest": "sha256:aa", "platform": {"architecture": "amd64"}}}, {"Descriptor": {"digest": "sha256:bb"}}]' \
  KIND_DEMO_WORK=$work/oci-index PATH="$work/fake:$PATH" bash "$script" up --plugin wasmplugin-oci >"$work/oci-index.txt" 2>&1
[ $? -eq 1 ] && grep -q "the pushed plugin image is not a single manifest (got 'index: 2 manifests'): build it with --provenance=false --sbom=false" "$work/oci-index.txt" &&
  grep -q "^docker run -d --restart=always -p 127.0.0.1:5001:5000 --name kind-registry registry:2$" "$work/fake/calls.log"
check oci-image-index-refused $?

# --- usage errors -----------------------------------------------------------------------------------
bash "$script" launch >"$work/e1.txt" 2>&1
[ $? -eq 2 ] && grep -q "unknown command 'launch' (expected up, verify or down)" "$work/e1.txt"
check unknown-command-exit-2 $?
bash "$script" up --plugin bogus --dry-run >"$work/e2.txt" 2>&1
[ $? -eq 1 ] && grep -q "plugin must be envoyfilter, wasmplugin or wasmplugin-oci, not 'bogus'" "$work/e2.txt"
check bad-plugin-exit-1 $?
bash "$script" verify --pod-ip 10.244.0.12 >"$work/e3.txt" 2>&1
[ $? -eq 1 ] && grep -q "needs --client-log FILE and --proxy-log FILE" "$work/e3.txt"
check verify-offline-needs-logs $?
# A PATH with the shell's basics but no docker/kind/istioctl: the first missing tool stops `up`.
mkdir -p "$work/bin"
for tool in bash sed dirname mktemp rm grep sort head cat jq openssl make; do ln -sf "$(command -v "$tool")" "$work/bin/$tool"; done
PATH=$work/bin "$work/bin/bash" "$script" up >"$work/e4.txt" 2>&1
[ $? -eq 1 ] && grep -q "kind-demo: docker is not installed. Install Docker Engine: https://docs.docker.com/engine/install/" "$work/e4.txt"
check missing-tool-says-how-to-get-it $?

# --- verify on real logs ----------------------------------------------------------------------------
client_log() {  # client_log EGRESS FILE: three rounds of the real client against the named server
  start_egress_server "$server" "$1" "$work/$1.log"
  "$client" --target 127.0.0.1 --http-port "$port_http" --https-port "$port_tls" --insecure --json --count 3 \
    --interval-ms 10 >"$2"
}
proxy_log() {  # proxy_log SOURCE-IP PORT FILE [ENVOYFILTER]: the real module's decision lines, as istio-proxy logs them
  local config
  config=$(python3 -c 'import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
print(doc["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["config"]["configuration"]["value"])' \
    "$repo/deploy/k8s/${4:-envoyfilter/50-envoyfilter.yaml}")
  "$host" replay "$module" --root-id tcpsteer --config "$config" \
    --conn "$1:40000,198.18.0.10:$2" --conn "$1:40002,198.18.0.10:$2" |
    jq -r 'select(.event == "log") | "2026-11-26T08:30:01.000000Z\t\(.level)\tenvoy wasm external/envoy/source/extensions/common/wasm/context.cc:1204\twasm log tcpsteer tcpsteer: \(.message)\tthread=21"' >"$3"
}

client_log egress1 "$work/client-egress1.log"
client_log egress2 "$work/client-egress2.log"
proxy_log 10.244.0.12 443 "$work/proxy-even.log"
proxy_log 10.244.0.13 443 "$work/proxy-odd.log"
grep -q "target=egress1" "$work/proxy-even.log" && grep -q "target=egress2" "$work/proxy-odd.log"
check real-module-log-lines $?

bash "$script" verify --pod-ip 10.244.0.12 --client-log "$work/client-egress1.log" --proxy-log "$work/proxy-even.log" >"$work/v1.txt" 2>&1 &&
  grep -q "ok   https: 3 answers, all from egress1" "$work/v1.txt" && grep -q "ok   filter: 2 decision line(s)" "$work/v1.txt" &&
  grep -q "info http: 3 egress1 (port 80 goes through the HTTP connection manager" "$work/v1.txt"
check verify-even-pod-ok $?
bash "$script" verify --pod-ip 10.244.0.13 --client-log "$work/client-egress2.log" --proxy-log "$work/proxy-odd.log" >"$work/v2.txt" 2>&1
check verify-odd-pod-ok $?
bash "$script" verify --pod-ip 10.244.0.13 --client-log "$work/client-egress1.log" --proxy-log "$work/proxy-odd.log" >"$work/v3.txt" 2>&1
[ $? -eq 1 ] && grep -q "FAIL https: 3 answers, but some from the wrong egress: 3 egress1" "$work/v3.txt"
check verify-wrong-egress-fails $?
bash "$script" verify --pod-ip 10.244.0.12 --client-log "$work/client-egress1.log" --proxy-log "$work/proxy-odd.log" >"$work/v4.txt" 2>&1
[ $? -eq 1 ] && grep -q "FAIL filter: no '\[TCP WASM\] new connection src=10.244.0.12:' line" "$work/v4.txt"
check verify-missing-filter-lines-fails $?
sed 's/target=egress1/target=egress2/' "$work/proxy-even.log" >"$work/proxy-even-wrong.log"
bash "$script" verify --pod-ip 10.244.0.12 --client-log "$work/client-egress1.log" --proxy-log "$work/proxy-even-wrong.log" >"$work/v5.txt" 2>&1
[ $? -eq 1 ] && grep -q "FAIL filter: decisions 2 target=egress2, expected only target=egress1" "$work/v5.txt"
check verify-wrong-filter-decision-fails $?
# With the port-80 override the HTTP answers and the filter's port-80 decisions must follow the rule too.
bash "$script" verify --port80 --pod-ip 10.244.0.13 --client-log "$work/client-egress2.log" --proxy-log "$work/proxy-odd.log" >"$work/v6.txt" 2>&1
[ $? -eq 1 ] && grep -q "ok   http: 3 answers, all from egress2" "$work/v6.txt" && grep -q "FAIL filter: no decision for a port-80" "$work/v6.txt"
check verify-port80-needs-port80-decisions $?
proxy_log 10.244.0.13 80 "$work/proxy-odd-80.log" port80/55-envoyfilter-port80.yaml
cat "$work/proxy-odd.log" "$work/proxy-odd-80.log" >"$work/proxy-odd-both.log"
bash "$script" verify --port80 --pod-ip 10.244.0.13 --client-log "$work/client-egress2.log" --proxy-log "$work/proxy-odd-both.log" >"$work/v6b.txt" 2>&1
check verify-port80-ok $?
: >"$work/empty.log"
bash "$script" verify --pod-ip 10.244.0.12 --client-log "$work/empty.log" --proxy-log "$work/proxy-even.log" >"$work/v7.txt" 2>&1
[ $? -eq 1 ] && grep -q "FAIL https: no answer in the client's log" "$work/v7.txt"
check verify-no-answers-fails $?

# --- verify of the gateway variant on real logs -------------------------------------------------------
# The client's lines: the real demo-client against the real egress-server named external, from a
# "gateway" address (127.0.0.21), so the server reports that address as the peer it saw; the filter's
# lines: the real module with the gateway EnvoyFilter's configuration.
start_egress_server "$server" external "$work/external.log"
"$client" --target 127.0.0.1 --https-port "$port_tls" --bind 127.0.0.21 --schemes https --insecure --json --count 3 \
  --interval-ms 10 >"$work/client-gw.log"
proxy_log 10.244.0.12 443 "$work/proxy-gw-even.log" gateways/60-envoyfilter.yaml
proxy_log 10.244.0.13 443 "$work/proxy-gw-odd.log" gateways/60-envoyfilter.yaml
grep -q "target=egress1 cluster=outbound|443||egress1.tcpsteer-egress.svc.cluster.local" "$work/proxy-gw-even.log"
check gateway-module-log-lines $?
bash "$script" verify --egress gateways --pod-ip 10.244.0.12 --client-log "$work/client-gw.log" --proxy-log "$work/proxy-gw-even.log" \
  --gateway1-ips "10.244.0.31 127.0.0.21" --gateway2-ips 10.244.0.32 >"$work/g1.txt" 2>&1 &&
  grep -q "ok   https: 3 answers from the external stand-in (certificate verified), which saw 3 127.0.0.21 = egress1" "$work/g1.txt" &&
  grep -q "ok   filter: 2 decision line(s), 2 target=egress1" "$work/g1.txt"
check verify-gateways-even-pod-ok $?
bash "$script" verify --egress gateways --pod-ip 10.244.0.13 --client-log "$work/client-gw.log" --proxy-log "$work/proxy-gw-odd.log" \
  --gateway1-ips 127.0.0.21 --gateway2-ips 10.244.0.32 >"$work/g2.txt" 2>&1
[ $? -eq 1 ] && grep -q "FAIL https: the stand-in saw 3 127.0.0.21, not egress2's pod address 10.244.0.32" "$work/g2.txt"
check verify-gateways-wrong-gateway-fails $?
bash "$script" verify --egress gateways --pod-ip 10.244.0.12 --client-log "$work/client-egress1.log" --proxy-log "$work/proxy-gw-even.log" \
  --gateway1-ips 127.0.0.1 --gateway2-ips 10.244.0.32 >"$work/g3.txt" 2>&1
[ $? -eq 1 ] && grep -q "FAIL https: answers from 3 egress1, not from the external stand-in" "$work/g3.txt"
check verify-gateways-answer-not-from-external-fails $?
bash "$script" verify --egress gateways --pod-ip 10.244.0.12 --client-log "$work/client-gw.log" --proxy-log "$work/proxy-gw-even.log" \
  >"$work/g4.txt" 2>&1
[ $? -eq 1 ] && grep -q "needs --client-log FILE, --proxy-log FILE, --gateway1-ips and --gateway2-ips" "$work/g4.txt"
check verify-gateways-offline-needs-addresses $?

finish kind-demo.sh
