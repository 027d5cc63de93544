#!/usr/bin/env bash
# tcpsteer on kind + Istio, from a clean checkout to a verified demo.
#
#   scripts/kind-demo.sh up [--egress standins|gateways|selection] [--plugin envoyfilter|wasmplugin|wasmplugin-oci]
#                           [--port80] [--no-network-policies] [--module-build native|docker]
#   scripts/kind-demo.sh verify [--egress standins|gateways|selection] [--port80]
#   scripts/kind-demo.sh down
#   scripts/kind-demo.sh verify --pod-ip IP --client-log FILE --proxy-log FILE [--port80]   (offline check)
#   scripts/kind-demo.sh verify --egress gateways --pod-ip IP --client-log FILE --proxy-log FILE
#                               --gateway1-ips "IP..." --gateway2-ips "IP..."              (offline check)
#
# --egress standins (default): egress1/egress2 answer themselves. --egress gateways: two Istio egress
# gateways carry the client's TLS on to the external host (deploy/k8s/gateways; the EnvoyFilter).
# --egress selection: the gateways with a second client namespace; each namespace leaves through its
# own gateway and falls back to the other (deploy/k8s/selection); verify also stops egress1 and
# checks that its clients move to egress2 and come back.
# --dry-run (any command) prints every command instead of running it. Needs docker (with buildx),
# kind >= 0.24, kubectl, istioctl, openssl, jq, make and git; says how to get a missing one.
set -euo pipefail

# Names the manifests depend on (tests/manifests/validate_manifests.py checks that they agree).
CLUSTER_NAME=${CLUSTER_NAME:-tcpsteer}
NAMESPACE=tcpsteer
SELECTION_NAMESPACE=tcpsteer-b  # the selection variant's second client namespace
GATEWAY_NAMESPACE=tcpsteer-egress
INTERNET_NAMESPACE=internet
IMAGE_TAG=0.1.0
WASM_CONFIGMAP=tcpsteer-wasm
WASM_KEY=tcpsteer.wasm
CA_CONFIGMAP=demo-ca
TLS_SECRET=egress-tls
EXTERNAL_HOST=api.tcpsteer.example
REGISTRY_NAME=kind-registry
REGISTRY_HOST_PORT=5001
MODULE=build/wasm/filter/tcpsteer.wasm
MIN_KIND=0.24.0  # the first kind that enforces NetworkPolicy (the demo's isolation relies on it)
MIN_ISTIO=1.20.0
MIN_KUBECTL=1.26.0

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dry_run=0
egress_mode=standins
egress_given=0
plugin=envoyfilter
plugin_given=0
port80=0
network_policies=1
module_build=''  # native (make wasm) or docker; default: native where apt-get exists
pod_ip=''
pod_namespace=$NAMESPACE  # the namespace of the pods check_with_retries reads
log_window=(--since=10m)  # which of their log lines
client_log=''
proxy_log=''
gateway1_ips=''
gateway2_ips=''
work=

usage() {
  sed -n '2,19p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}
# The gateway and selection variants share the gateways, their namespaces and the stand-in.
with_gateways() { [ "$egress_mode" = gateways ] || [ "$egress_mode" = selection ]; }
# The namespaces with a demo client.
client_namespaces() {
  echo "$NAMESPACE"
  [ "$egress_mode" = selection ] && echo "$SELECTION_NAMESPACE"
  return 0
}
die() { echo "kind-demo: $*" >&2; exit 1; }
banner() { printf '\n==> %s\n' "$*"; }

# run CMD...: runs it, or prints it under --dry-run.
run() {
  if ((dry_run)); then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}
# run_pipe "A | B": a pipeline given as one string (printed as is under --dry-run).
run_pipe() {
  if ((dry_run)); then printf '+ %s\n' "$1"; else bash -o pipefail -c "$1"; fi
}

version_at_least() {  # version_at_least HAVE NEED
  [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]
}

need_tool() {  # need_tool NAME VERSION-COMMAND MIN-VERSION HOW-TO-GET
  local name=$1 version_cmd=$2 min=$3 how=$4 have
  if ! command -v "$name" >/dev/null 2>&1; then
    if ((dry_run)); then echo "(dry run) $name is not installed: $how"; return 0; fi
    die "$name is not installed. $how"
  fi
  [ -z "$min" ] && { echo "found $name"; return 0; }
  have=$(bash -c "$version_cmd" 2>/dev/null | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1 || true)
  if [ -z "$have" ]; then
    echo "warning: could not read the version of $name (need >= $min)"
  elif ! version_at_least "$have" "$min"; then
    ((dry_run)) && { echo "(dry run) $name $have is older than $min: $how"; return 0; }
    die "$name $have is older than $min. $how"
  else
    echo "found $name $have"
  fi
}

check_tools() {
  banner "checking tools"
  need_tool docker "docker version --format '{{.Client.Version}}'" "" \
    "Install Docker Engine: https://docs.docker.com/engine/install/"
  need_tool kind "kind version" "$MIN_KIND" \
    "Get it with: go install sigs.k8s.io/kind@v0.32.0 (or the binary from https://kind.sigs.k8s.io/docs/user/quick-start/)"
  need_tool kubectl "kubectl version --client" "$MIN_KUBECTL" \
    "Get it from https://kubernetes.io/docs/tasks/tools/"
  need_tool istioctl "istioctl version --remote=false" "$MIN_ISTIO" \
    "Get it with: curl -sL https://istio.io/downloadIstioctl | sh - && export PATH=\$HOME/.istioctl/bin:\$PATH (network WasmPlugin and set_envoy_filter_state need Istio >= $MIN_ISTIO)"
  need_tool openssl "openssl version" "" "apt-get install openssl"
  need_tool jq "jq --version" "" "apt-get install jq"
  need_tool make "make --version" "" "apt-get install make (or run scripts/install-deps.sh)"
  need_tool git "git --version" "" "install git (the plugin image's timestamp is the last commit's)"
  if ! ((dry_run)) && ! docker info >/dev/null 2>&1; then
    die "docker is installed but its daemon does not answer (docker info failed): start Docker, or add yourself to the docker group"
  fi
  if ! ((dry_run)) && ! docker buildx version >/dev/null 2>&1; then
    die "docker buildx is missing (Docker >= 23 has it; on Debian/Ubuntu: apt-get install docker-buildx-plugin or docker-buildx)"
  fi
}

# Images are built as single-platform manifests (no provenance/SBOM attestations, so no image
# index): `kind load` then finds their content (kind#3795), and the plugin image's digest is the one
# istio-agent compares. SOURCE_DATE_EPOCH (the last commit's time) fixes every timestamp BuildKit
# writes, so the same sources give the same digest.
docker_build() {  # docker_build DOCKERFILE TAG [ARGS...]
  run docker build --provenance=false --sbom=false --build-arg "SOURCE_DATE_EPOCH=$source_date_epoch" \
    -f "$1" -t "$2" "${@:3}" .
}

# The module: natively where scripts/install-deps.sh can run (Debian/Ubuntu with apt), else inside
# Docker with the same toolchain (the build stage of plugin.Dockerfile), exported to $MODULE.
build_module() {
  if [ "$module_build" = native ]; then
    run make wasm
  else
    echo "building the module in Docker (this host cannot run scripts/install-deps.sh: no apt-get)"
    docker_build deploy/docker/plugin.Dockerfile tcpsteer/plugin-build:$IMAGE_TAG --target module \
      --output "$(dirname "$MODULE")"
  fi
}

# Image to kind: through an archive, which works with Docker's containerd image store too.
kind_load() {  # kind_load IMAGE
  local archive
  archive="$work/$(basename "${1%%:*}").tar"
  run docker save "$1" -o "$archive"
  run kind load image-archive "$archive" --name "$CLUSTER_NAME"
}

make_certificates() {  # a CA, and a certificate for the external host signed by it
  banner "certificates: a demo CA and a certificate for $EXTERNAL_HOST (the egress servers present it)"
  run openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=tcpsteer demo CA" \
    -keyout "$work/ca.key" -out "$work/ca.crt"
  run openssl req -newkey rsa:2048 -nodes -subj "/CN=$EXTERNAL_HOST" \
    -keyout "$work/tls.key" -out "$work/tls.csr"
  run_pipe "printf 'subjectAltName=DNS:$EXTERNAL_HOST\n' > '$work/san.ext'"
  run openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" -CAcreateserial \
    -days 30 -extfile "$work/san.ext" -out "$work/tls.crt"
}

apply_file() { run kubectl apply -f "$1"; }

oci_plugin_manifest() {  # pushes the plugin image; writes the WasmPlugin with the registry address and digest
  banner "OCI module: local registry $REGISTRY_NAME, push, digest"
  # A stopped registry from an earlier run is started again (its name is taken).
  if ((dry_run)) || [ -z "$(docker ps -aq -f "name=^${REGISTRY_NAME}$")" ]; then
    run docker run -d --restart=always -p "127.0.0.1:$REGISTRY_HOST_PORT:5000" --name "$REGISTRY_NAME" registry:2
  elif [ -z "$(docker ps -q -f "name=^${REGISTRY_NAME}$")" ]; then
    run docker start "$REGISTRY_NAME"
  fi
  run_pipe "docker network connect kind $REGISTRY_NAME 2>/dev/null || true"
  run docker tag "tcpsteer/plugin:$IMAGE_TAG" "localhost:$REGISTRY_HOST_PORT/tcpsteer/plugin:$IMAGE_TAG"
  run docker push "localhost:$REGISTRY_HOST_PORT/tcpsteer/plugin:$IMAGE_TAG"
  local registry_ip=REGISTRY_IP digest=0000000000000000000000000000000000000000000000000000000000000000
  if ! ((dry_run)); then
    registry_ip=$(docker inspect -f '{{.NetworkSettings.Networks.kind.IPAddress}}' "$REGISTRY_NAME")
    # istio-agent compares sha256 with the digest of the image manifest it fetches (not of the .wasm
    # file). Built without attestations, the push is one manifest: no index, no platform to pick
    # (istio-agent would resolve linux/amd64 from an index, whatever this host's architecture).
    digest=$(docker manifest inspect --verbose "localhost:$REGISTRY_HOST_PORT/tcpsteer/plugin:$IMAGE_TAG" |
      jq -r 'if type == "array" then "index: \(length) manifests" else .Descriptor.digest end')
    digest=${digest##*sha256:}
    [[ $digest =~ ^[0-9a-f]{64}$ ]] ||
      die "the pushed plugin image is not a single manifest (got '$digest'): build it with --provenance=false --sbom=false"
  else
    echo "+ (the registry's address on the kind network and the pushed digest go into the WasmPlugin)"
  fi
  # Pods reach the registry by its address on the kind network; istio-agent must be told it is plain HTTP.
  sed -e "s|oci://[^/]*/|oci://$registry_ip:5000/|" -e "s|sha256: \".*\"|sha256: \"$digest\"|" \
    "$repo/deploy/k8s/wasmplugin-oci/50-wasmplugin-oci.yaml" >"$work/50-wasmplugin-oci.yaml"
  # istio-agent must be told the registry speaks plain HTTP: a copy of the client manifest says so.
  sed "s|proxy.istio.io/config: '{\"holdApplicationUntilProxyStarts\": true}'|proxy.istio.io/config: '{\"holdApplicationUntilProxyStarts\": true, \"proxyMetadata\": {\"WASM_INSECURE_REGISTRIES\": \"$registry_ip:5000\"}}'|" \
    "$repo/deploy/k8s/client/30-demo-client.yaml" >"$work/30-demo-client.yaml"
  grep -q WASM_INSECURE_REGISTRIES "$work/30-demo-client.yaml" ||
    die "could not set WASM_INSECURE_REGISTRIES in the client manifest (its proxy.istio.io/config annotation changed?)"
  # Alone, this Egress policy would cut the client off istiod, DNS and the egress pods: it only makes
  # sense next to the base policies.
  if ((network_policies)); then
    apply_file "$repo/deploy/k8s/wasmplugin-oci/45-networkpolicy-registry.yaml"
  else
    echo "skipping deploy/k8s/wasmplugin-oci/45-networkpolicy-registry.yaml (--no-network-policies)"
  fi
  apply_file "$work/50-wasmplugin-oci.yaml"
}

# A re-run in another mode must not leave the previous mode's objects: the filter would run twice
# (EnvoyFilter and WasmPlugin), or port 80 stay intercepted, or policies stay after
# --no-network-policies.
remove_other_modes() {
  if with_gateways; then
    # The other gateway variant's extras: the second client namespace and the failover clusters.
    if [ "$egress_mode" = gateways ]; then
      run kubectl delete namespace --ignore-not-found "$SELECTION_NAMESPACE"
      run kubectl -n istio-system delete --ignore-not-found envoyfilter/tcpsteer-failover
    fi
    # The stand-in variant's objects (the client, the namespace and the ServiceEntry stay: the gateway
    # variant applies its own versions of them).
    run kubectl -n "$NAMESPACE" delete --ignore-not-found deployment/egress1 deployment/egress2 \
      service/egress1 service/egress2 serviceaccount/egress1 serviceaccount/egress2 \
      networkpolicy/egress-from-client-only networkpolicy/demo-client-registry \
      wasmplugin/tcpsteer envoyfilter/tcpsteer-port80
    return
  fi
  # The gateway variants' namespaces go whole.
  run kubectl delete namespace --ignore-not-found "$GATEWAY_NAMESPACE" "$INTERNET_NAMESPACE" "$SELECTION_NAMESPACE"
  run kubectl -n istio-system delete --ignore-not-found envoyfilter/tcpsteer-failover
  local gone=()
  [ "$plugin" = envoyfilter ] || gone+=(envoyfilter/tcpsteer)
  [ "$plugin" = envoyfilter ] && gone+=(wasmplugin/tcpsteer)
  [ "$plugin" = wasmplugin-oci ] && ((network_policies)) || gone+=(networkpolicy/demo-client-registry)
  ((port80)) || gone+=(envoyfilter/tcpsteer-port80)
  ((network_policies)) || gone+=(networkpolicy/demo-client-egress networkpolicy/egress-from-client-only)
  run kubectl -n "$NAMESPACE" delete --ignore-not-found "${gone[@]}"
}

cmd_up() {
  egress_given=1  # the verify at the end checks what this run installed
  check_tools
  cd "$repo"
  banner "building the module and the images"
  build_module
  docker_build deploy/docker/egress-server.Dockerfile "tcpsteer/egress-server:$IMAGE_TAG"
  docker_build deploy/docker/demo-client.Dockerfile "tcpsteer/demo-client:$IMAGE_TAG"
  if [ "$plugin" = wasmplugin-oci ]; then
    docker_build deploy/docker/plugin.Dockerfile "tcpsteer/plugin:$IMAGE_TAG"
  fi

  banner "kind cluster $CLUSTER_NAME"
  if ! ((dry_run)) && kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    echo "cluster $CLUSTER_NAME exists; reusing it"
  else
    run kind create cluster --config deploy/kind/cluster.yaml --name "$CLUSTER_NAME" --wait 180s
  fi
  run kubectl config use-context "kind-$CLUSTER_NAME"

  banner "Istio (demo profile)"
  run istioctl install --set profile=demo -y
  run kubectl -n istio-system rollout status deployment/istiod --timeout=300s

  banner "loading images into kind (no registry needed for the apps)"
  kind_load "tcpsteer/egress-server:$IMAGE_TAG"
  kind_load "tcpsteer/demo-client:$IMAGE_TAG"

  banner "namespaces $(client_namespaces | xargs)$(with_gateways && echo ", $GATEWAY_NAMESPACE and $INTERNET_NAMESPACE")"
  apply_file deploy/k8s/client/00-namespace.yaml
  with_gateways && apply_file deploy/k8s/gateways/05-namespaces.yaml
  if [ "$egress_mode" = selection ]; then
    run_pipe "kubectl create namespace $SELECTION_NAMESPACE --dry-run=client -o yaml | kubectl apply -f -"
    run kubectl label namespace "$SELECTION_NAMESPACE" istio-injection=enabled app.kubernetes.io/part-of=tcpsteer --overwrite
  fi
  make_certificates
  banner "secrets and ConfigMaps: TLS for the $(with_gateways && echo "external stand-in" || echo "egress servers"), the CA for the client, the module for istio-proxy"
  # The certificate for the external host belongs to whoever answers as it: egress1/egress2 in the
  # stand-in variant, the stand-in behind the gateways in the gateway variant.
  local tls_namespace=$NAMESPACE
  with_gateways && tls_namespace=$INTERNET_NAMESPACE
  # Server-side apply: a client-side apply would copy the module into the last-applied-configuration
  # annotation (256 KiB at most), so a module over about 190 KB could not be applied.
  run_pipe "kubectl -n $tls_namespace create secret tls $TLS_SECRET --cert=$work/tls.crt --key=$work/tls.key --dry-run=client -o yaml | kubectl apply --server-side --force-conflicts -f -"
  local client_namespace
  for client_namespace in $(client_namespaces); do
    run_pipe "kubectl -n $client_namespace create configmap $CA_CONFIGMAP --from-file=ca.crt=$work/ca.crt --dry-run=client -o yaml | kubectl apply --server-side --force-conflicts -f -"
    run_pipe "kubectl -n $client_namespace create configmap $WASM_CONFIGMAP --from-file=$WASM_KEY=$MODULE --dry-run=client -o yaml | kubectl apply --server-side --force-conflicts -f -"
  done

  # The filter's configuration goes in before the client starts: with holdApplicationUntilProxyStarts
  # the client's first request waits for a sidecar that already has the filter, so no early answer
  # comes from the unfiltered default route.
  if with_gateways; then
    up_gateways
    return
  fi
  banner "manifests: egress and ServiceEntry, the filter ($plugin)$( ((port80)) && echo ' and the port-80 override'), then the client"
  local file client_manifest=deploy/k8s/client/30-demo-client.yaml
  for file in deploy/k8s/base/[0-9]*.yaml; do  # the manifests, not kustomization.yaml
    if [[ $file == *networkpolicy* ]] && ! ((network_policies)); then echo "skipping $file (--no-network-policies)"; continue; fi
    apply_file "$file"
  done
  if ((port80)); then
    apply_file deploy/k8s/port80/20-serviceentry.yaml
    apply_file deploy/k8s/port80/55-envoyfilter-port80.yaml
  fi
  remove_other_modes
  case $plugin in
    envoyfilter) apply_file deploy/k8s/envoyfilter/50-envoyfilter.yaml ;;
    wasmplugin) apply_file deploy/k8s/wasmplugin/50-wasmplugin.yaml ;;
    wasmplugin-oci) oci_plugin_manifest; client_manifest=$work/30-demo-client.yaml ;;
  esac
  apply_file "$client_manifest"
  # On a re-run the module, the CA and the certificate are new: restart every pod so all of them use the
  # same ones (istio-proxy reads the module file when it builds the listener; the apps read TLS files at start).
  run kubectl -n "$NAMESPACE" rollout restart deployment/egress1 deployment/egress2 deployment/demo-client

  banner "waiting for rollouts"
  local deployment
  for deployment in egress1 egress2 demo-client; do
    run kubectl -n "$NAMESPACE" rollout status "deployment/$deployment" --timeout=300s
  done
  cmd_verify
}

# The gateway variant, from deploy/k8s/gateways as kustomize renders it (its client makes HTTPS
# requests only). Everything goes in at once; the restart below makes every pod start after the
# filter, the routes and the policies exist.
up_gateways() {
  banner "manifests: the egress gateways, their Gateway/VirtualService/DestinationRules, the ServiceEntry, the stand-in in $INTERNET_NAMESPACE, the policies, the filter and the client$([ "$egress_mode" = selection ] && echo "s of $(client_namespaces | xargs), the failover clusters")"
  remove_other_modes
  run_pipe "kubectl kustomize deploy/k8s/$egress_mode > '$work/$egress_mode.yaml'"
  apply_file "$work/$egress_mode.yaml"
  run kubectl -n "$GATEWAY_NAMESPACE" rollout restart deployment/egress1 deployment/egress2
  run kubectl -n "$INTERNET_NAMESPACE" rollout restart deployment/standin
  local client_namespace
  for client_namespace in $(client_namespaces); do
    run kubectl -n "$client_namespace" rollout restart deployment/demo-client
  done
  banner "waiting for rollouts"
  run kubectl -n "$GATEWAY_NAMESPACE" rollout status deployment/egress1 --timeout=300s
  run kubectl -n "$GATEWAY_NAMESPACE" rollout status deployment/egress2 --timeout=300s
  run kubectl -n "$INTERNET_NAMESPACE" rollout status deployment/standin --timeout=300s
  for client_namespace in $(client_namespaces); do
    run kubectl -n "$client_namespace" rollout status deployment/demo-client --timeout=300s
  done
  cmd_verify
}

expected_egress() {  # the rule: even last octet -> egress1, odd -> egress2
  local last=${1##*.}
  [[ $last =~ ^[0-9]+$ ]] || die "not an IPv4 address: $1"
  if ((10#$last % 2 == 0)); then echo egress1; else echo egress2; fi
}

# check_logs POD IP CLIENT-LOG PROXY-LOG: the client's answers and the filter's lines follow the rule.
check_logs() {
  local pod=$1 ip=$2 client=$3 proxy=$4 expected ok=0
  expected=$(expected_egress "$ip")
  echo "pod $pod ip $ip: last octet ${ip##*.} -> expected $expected"
  local schemes=(https)
  ((port80)) && schemes+=(http)
  local scheme answers wrong errors
  for scheme in "${schemes[@]}"; do
    answers=$(jq -rR --arg s "$scheme" 'fromjson? | select(.scheme == $s and .ok == true) | .egress' "$client" | wc -l)
    wrong=$(jq -rR --arg s "$scheme" --arg e "$expected" \
      'fromjson? | select(.scheme == $s and .ok == true and .egress != $e) | .egress' "$client" | sort | uniq -c | xargs)
    errors=$(jq -rR --arg s "$scheme" 'fromjson? | select(.scheme == $s and .ok == false) | .error' "$client" | sort | uniq -c | head -3 | xargs)
    if ((answers == 0)); then
      echo "  FAIL $scheme: no answer in the client's log${errors:+ (errors: $errors)}"; ok=1
    elif [ -n "$wrong" ]; then
      echo "  FAIL $scheme: $answers answers, but some from the wrong egress: $wrong"; ok=1
    else
      echo "  ok   $scheme: $answers answers, all from $expected"
    fi
  done
  if ! ((port80)); then
    local http
    http=$(jq -rR 'fromjson? | select(.scheme == "http" and .ok == true) | .egress' "$client" | sort | uniq -c | xargs)
    echo "  info http: ${http:-no answers} (port 80 goes through the HTTP connection manager, not the filter; --port80 changes that)"
  fi
  check_filter_lines "$ip" "$proxy" "$expected" || ok=1
  if ((port80)) && ! grep -F "[TCP WASM] new connection src=$ip:" "$proxy" | grep -qE ' dst=[^ ]*:80 .*target='; then
    echo "  FAIL filter: no decision for a port-80 connection (is port80/55-envoyfilter-port80.yaml applied?)"; ok=1
  fi
  return "$ok"
}

# check_filter_lines IP PROXY-LOG EXPECTED: the filter's decision lines for this source name only EXPECTED.
check_filter_lines() {
  local ip=$1 proxy=$2 expected=$3 lines targets
  lines=$(grep -F "[TCP WASM] new connection src=$ip:" "$proxy" || true)
  targets=$(grep -oE 'target=[A-Za-z0-9_+-]+' <<<"$lines" | sort | uniq -c | xargs || true)
  if [ -z "$lines" ]; then
    echo "  FAIL filter: no '[TCP WASM] new connection src=$ip:' line in istio-proxy's log (see docs/istio.md#troubleshooting)"; return 1
  elif grep -oE 'target=[A-Za-z0-9_+-]+' <<<"$lines" | grep -qvx "target=$expected"; then
    echo "  FAIL filter: decisions $targets, expected only target=$expected"; return 1
  fi
  echo "  ok   filter: $(wc -l <<<"$lines") decision line(s), $targets"
}

# check_gateway_logs POD IP CLIENT-LOG PROXY-LOG GATEWAY1-IPS GATEWAY2-IPS: every HTTPS answer came
# from the external stand-in (so the client verified the stand-in's own certificate: it runs without
# --insecure), which saw the pod address of the gateway the rule picks; the filter chose that gateway.
check_gateway_logs() {
  local pod=$1 ip=$2 client=$3 proxy=$4 expected want_ips ok=0 target why
  # The selection variant passes the gateway its namespace's rule picks, and the filter's target
  # (the fallback list); otherwise the even/odd rule decides.
  expected=${7:-$(expected_egress "$ip")}
  target=${8:-$expected}
  why="last octet ${ip##*.}"
  [ -n "${7:-}" ] && why="its namespace's rule ($target)"
  if [ "$expected" = egress1 ]; then want_ips=$5; else want_ips=$6; fi
  echo "pod $pod ip $ip: $why -> expected gateway $expected (pod address ${want_ips:-unknown})"
  local answers seen wrong others errors
  answers=$(jq -rR 'fromjson? | select(.scheme == "https" and .ok == true) | .egress' "$client" | wc -l)
  seen=$(jq -rR 'fromjson? | select(.scheme == "https" and .ok == true) | .seen_as | sub(":[0-9]+$"; "")' "$client")
  wrong=$(while read -r address; do
    if [ -n "$address" ] && [[ " $want_ips " != *" $address "* ]]; then echo "$address"; fi
  done <<<"$seen" | sort | uniq -c | xargs)
  others=$(jq -rR 'fromjson? | select(.scheme == "https" and .ok == true and .egress != "external") | .egress' "$client" | sort | uniq -c | xargs)
  errors=$(jq -rR 'fromjson? | select(.scheme == "https" and .ok == false) | .error' "$client" | sort | uniq -c | head -3 | xargs)
  if ((answers == 0)); then
    echo "  FAIL https: no answer in the client's log${errors:+ (errors: $errors)}"; ok=1
  elif [ -n "$others" ]; then
    echo "  FAIL https: answers from $others, not from the external stand-in (was a gateway terminating TLS?)"; ok=1
  elif [ -n "$wrong" ]; then
    echo "  FAIL https: the stand-in saw $wrong, not $expected's pod address $want_ips"; ok=1
  else
    echo "  ok   https: $answers answers from the external stand-in (certificate verified), which saw $(sort <<<"$seen" | uniq -c | xargs) = $expected"
  fi
  check_filter_lines "$ip" "$proxy" "$target" || ok=1
  return "$ok"
}

# "NAME IP" of each running demo-client pod that is not being replaced (a rollout restart leaves
# old ones terminating).
client_pods() {
  kubectl -n "${1:-$NAMESPACE}" get pods -l app=demo-client --field-selector=status.phase=Running -o json |
    jq -r '.items[] | select(.metadata.deletionTimestamp == null) | "\(.metadata.name) \(.status.podIP)"'
}

# check_with_retries POD CHECK [ARGS...]: POD's client and istio-proxy logs into $work, then CHECK
# ARGS, until it passes or six tries 5 s apart have passed (the client makes a round every 2 s);
# the last try's output is in $work/result.
check_with_retries() {
  local pod=$1 attempt
  shift
  for attempt in 1 2 3 4 5 6; do
    kubectl -n "$pod_namespace" logs "$pod" -c demo-client "${log_window[@]}" >"$work/client.log" || true
    kubectl -n "$pod_namespace" logs "$pod" -c istio-proxy "${log_window[@]}" >"$work/proxy.log" || true
    if "$@" >"$work/result" 2>&1; then return 0; fi
    ((attempt < 6)) && sleep 5
  done
  return 0
}

# Gateway pod addresses of deployment NAME (running, not being replaced), space separated.
gateway_ips() {
  kubectl -n "$GATEWAY_NAMESPACE" get pods -l "istio=$1" --field-selector=status.phase=Running -o json |
    jq -r '[.items[] | select(.metadata.deletionTimestamp == null) | .status.podIP] | join(" ")'
}

# In-cluster checks of the gateway variant beyond the logs: what the gateways refuse and what the
# policies block, from inside a client pod with the client's own binary.
verify_gateway_refusals() {
  local pod=$1 failed=0 standin
  if kubectl -n "$NAMESPACE" exec "$pod" -c demo-client -- /usr/local/bin/demo-client --target=other.tcpsteer.example \
      --connect-to=198.18.0.10 --schemes=https --once --insecure --timeout-ms=5000 >/dev/null 2>&1; then
    echo "  FAIL gateway: other.tcpsteer.example was let through (the Gateway hosts are the allow-list)"; failed=1
  else
    echo "  ok   gateway: other.tcpsteer.example refused (no filter chain for that SNI: NR in the gateway's log)"
  fi
  standin=$(kubectl -n "$INTERNET_NAMESPACE" get pods -l app=standin -o jsonpath='{.items[0].status.podIP}')
  if [ -n "$standin" ] && kubectl -n "$NAMESPACE" exec "$pod" -c demo-client -- /usr/local/bin/demo-client \
      --target="$standin" --https-port=8443 --schemes=https --once --insecure --timeout-ms=5000 >/dev/null 2>&1; then
    echo "  FAIL policy: the client reached the stand-in $standin directly"; failed=1
  else
    echo "  ok   policy: the client cannot reach the stand-in ${standin:-?} directly"
  fi
  return "$failed"
}

cmd_verify_gateways() {
  if [ -n "$pod_ip" ]; then  # offline: check given logs
    if [ ! -r "$client_log" ] || [ ! -r "$proxy_log" ] || [ -z "$gateway1_ips" ] || [ -z "$gateway2_ips" ]; then
      die "--egress gateways --pod-ip needs --client-log FILE, --proxy-log FILE, --gateway1-ips and --gateway2-ips"
    fi
    check_gateway_logs "(logs)" "$pod_ip" "$client_log" "$proxy_log" "$gateway1_ips" "$gateway2_ips"
    return
  fi
  banner "verify: each client pod left through the gateway the even/odd rule picks, to the external stand-in"
  if ((dry_run)); then
    run kubectl -n "$GATEWAY_NAMESPACE" get pods -l istio=egress1 --field-selector=status.phase=Running -o json
    run kubectl -n "$NAMESPACE" get pods -l app=demo-client --field-selector=status.phase=Running -o json
    run kubectl -n "$NAMESPACE" logs POD -c demo-client --since=10m
    run kubectl -n "$NAMESPACE" logs POD -c istio-proxy --since=10m
    run kubectl -n "$GATEWAY_NAMESPACE" logs deployment/egress1 -c istio-proxy --since=10m
    run kubectl -n "$NAMESPACE" exec POD -c demo-client -- /usr/local/bin/demo-client --target=other.tcpsteer.example --connect-to=198.18.0.10
    return 0
  fi
  local gw1 gw2 pods failed=0 name ip expected
  gw1=$(gateway_ips egress1)
  gw2=$(gateway_ips egress2)
  if [ -z "$gw1" ] || [ -z "$gw2" ]; then
    die "no running gateway pod (egress1: '${gw1}', egress2: '${gw2}'): kubectl -n $GATEWAY_NAMESPACE get pods"
  fi
  pods=$(client_pods)
  [ -n "$pods" ] || die "no running demo-client pod in namespace $NAMESPACE (kubectl -n $NAMESPACE get pods)"
  while read -r name ip; do
    check_with_retries "$name" check_gateway_logs "$name" "$ip" "$work/client.log" "$work/proxy.log" "$gw1" "$gw2"
    cat "$work/result"
    grep -q FAIL "$work/result" && failed=1
    # The gateway's side (needs access logging: the demo profile writes it to stdout): the client pod
    # as downstream peer of the passthrough cluster, with its SNI.
    expected=$(expected_egress "$ip")
    if kubectl -n "$GATEWAY_NAMESPACE" logs "deployment/$expected" -c istio-proxy --since=10m 2>/dev/null |
        grep -F 'outbound|443||api.tcpsteer.example' | grep -F " $ip:" | grep -qF ' api.tcpsteer.example'; then
      echo "  ok   $expected access log: connections from $ip to outbound|443||api.tcpsteer.example by SNI"
    else
      echo "  info $expected access log: no line for $ip (is access logging on? meshConfig.accessLogFile=/dev/stdout)"
    fi
  done <<<"$pods"
  verify_gateway_refusals "${pods%% *}" || failed=1
  if ((failed)); then
    echo; echo "verify: FAILED. Next: scripts/inspect-chains.sh --gateway deploy/egress1 (the gateway's chains) and docs/istio.md#egress-gateways"
    return 1
  fi
  echo; echo "verify: every client pod left through the gateway the rule picks"
}

cmd_verify() {
  # `verify` on its own follows what `up` installed: the gateway variants have their own namespaces.
  if ((!egress_given)) && [ -z "$pod_ip" ] && ! ((dry_run)) &&
    [ "$(kubectl get namespace "$GATEWAY_NAMESPACE" -o jsonpath='{.status.phase}' 2>/dev/null)" = Active ]; then
    egress_mode=gateways
    if [ "$(kubectl get namespace "$SELECTION_NAMESPACE" -o jsonpath='{.status.phase}' 2>/dev/null)" = Active ]; then
      egress_mode=selection
    fi
  fi
  if [ "$egress_mode" = selection ]; then
    cmd_verify_selection
    return
  fi
  if [ "$egress_mode" = gateways ]; then
    cmd_verify_gateways
    return
  fi
  if [ -n "$pod_ip" ]; then  # offline: check given logs
    if [ ! -r "$client_log" ] || [ ! -r "$proxy_log" ]; then
      die "--pod-ip needs --client-log FILE and --proxy-log FILE (files that exist)"
    fi
    check_logs "(logs)" "$pod_ip" "$client_log" "$proxy_log"
    return
  fi
  banner "verify: each client pod's answers and the filter's decisions follow the even/odd rule"
  if ((dry_run)); then
    run kubectl -n "$NAMESPACE" get pods -l app=demo-client --field-selector=status.phase=Running -o json
    run kubectl -n "$NAMESPACE" logs POD -c demo-client --since=10m
    run kubectl -n "$NAMESPACE" logs POD -c istio-proxy --since=10m
    run kubectl -n "$NAMESPACE" exec POD -c istio-proxy -- pilot-agent request GET stats/prometheus
    return 0
  fi
  if ! ((port80)) && kubectl -n "$NAMESPACE" get envoyfilter tcpsteer-port80 >/dev/null 2>&1; then port80=1; fi
  local pods failed=0 name ip
  pods=$(client_pods)
  [ -n "$pods" ] || die "no running demo-client pod in namespace $NAMESPACE (kubectl -n $NAMESPACE get pods)"
  while read -r name ip; do
    check_with_retries "$name" check_logs "$name" "$ip" "$work/client.log" "$work/proxy.log"
    cat "$work/result"
    grep -q FAIL "$work/result" && failed=1
    # The filter's counters as Prometheus scrapes them (informational: Istio's stats inclusion list
    # decides whether wasmcustom metrics are exported; docs/istio.md#debugging).
    local counters
    counters=$(kubectl -n "$NAMESPACE" exec "$name" -c istio-proxy -- pilot-agent request GET stats/prometheus 2>/dev/null |
      grep -E '^tcpsteer_(routed|unroutable|errors)' | xargs || true)
    echo "  info counters: ${counters:-none exported yet (they appear once a connection went through the filter)}"
  done <<<"$pods"
  if ((failed)); then
    echo; echo "verify: FAILED. Next: scripts/inspect-chains.sh POD 443 (is the wasm filter before tcp_proxy?) and docs/istio.md#troubleshooting"
    return 1
  fi
  echo; echo "verify: every client pod was routed by the rule"
}

# The selection variant: each namespace's clients leave through the gateway its rule lists first
# (tcpsteer -> egress1, tcpsteer-b -> egress2, deploy/k8s/selection); then egress1 is stopped, and
# tcpsteer's clients must move to egress2 (the aggregate cluster, driven by outlier detection) and
# come back once it returns.
SELECTION_EXPECTED=("$NAMESPACE egress1 egress1+egress2" "$SELECTION_NAMESPACE egress2 egress2+egress1")

verify_selection_round() {  # LABEL: every client pod of each namespace against its expectation
  local label=$1 gw1 gw2 failed=0 entry namespace gateway target pods name ip
  gw1=$(gateway_ips egress1)
  gw2=$(gateway_ips egress2)
  for entry in "${SELECTION_EXPECTED[@]}"; do
    read -r namespace gateway target <<<"$entry"
    # While egress1 is down, its namespace falls back to egress2.
    [ "$label" = "egress1 down" ] && gateway=egress2
    pod_namespace=$namespace
    pods=$(client_pods "$namespace")
    if [ -z "$pods" ]; then echo "  FAIL no running demo-client pod in $namespace"; failed=1; continue; fi
    while read -r name ip; do
      check_with_retries "$name" check_gateway_logs "$name" "$ip" "$work/client.log" "$work/proxy.log" "$gw1" "$gw2" "$gateway" "$target"
      sed "s/^/[$label] /" "$work/result"
      grep -q FAIL "$work/result" && failed=1
    done <<<"$pods"
  done
  pod_namespace=$NAMESPACE
  return "$failed"
}

cmd_verify_selection() {
  banner "verify: each namespace leaves through its own gateway; egress1 down, its clients fall back to egress2 and return"
  if ((dry_run)); then
    run kubectl -n "$NAMESPACE" get pods -l app=demo-client --field-selector=status.phase=Running -o json
    run kubectl -n "$SELECTION_NAMESPACE" get pods -l app=demo-client --field-selector=status.phase=Running -o json
    run kubectl -n "$GATEWAY_NAMESPACE" scale deployment/egress1 --replicas=0
    run kubectl -n "$GATEWAY_NAMESPACE" wait --for=delete pod -l istio=egress1 --timeout=120s
    run kubectl -n "$GATEWAY_NAMESPACE" scale deployment/egress1 --replicas=1
    run kubectl -n "$GATEWAY_NAMESPACE" rollout status deployment/egress1 --timeout=300s
    return 0
  fi
  local failed=0 since
  verify_selection_round "both up" || failed=1
  banner "failover: egress1 stopped"
  run kubectl -n "$GATEWAY_NAMESPACE" scale deployment/egress1 --replicas=0
  run kubectl -n "$GATEWAY_NAMESPACE" wait --for=delete pod -l istio=egress1 --timeout=120s
  since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  # Rounds every 2 s; the first refused connect ejects the gateway. Only answers after this moment.
  sleep 15
  log_window=(--since-time="$since")
  verify_selection_round "egress1 down" || failed=1
  banner "failover: egress1 back"
  run kubectl -n "$GATEWAY_NAMESPACE" scale deployment/egress1 --replicas=1
  run kubectl -n "$GATEWAY_NAMESPACE" rollout status deployment/egress1 --timeout=300s
  # The ejection lasts baseEjectionTime (10 s, longer after repeated ejections): wait it out, then
  # read only what came after.
  sleep 40
  since=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  sleep 10
  log_window=(--since-time="$since")
  verify_selection_round "egress1 back" || failed=1
  log_window=(--since=10m)
  if ((failed)); then
    echo; echo "verify: FAILED. Next: scripts/inspect-chains.sh POD 443, kubectl -n istio-system get envoyfilter tcpsteer-failover, docs/istio.md#choosing-egress-by-workload-failover-and-fixed-egress-ips"
    return 1
  fi
  echo; echo "verify: each namespace left through its own gateway, and egress1's clients failed over and back"
}

cmd_down() {
  banner "deleting kind cluster $CLUSTER_NAME and the local registry"
  run kind delete cluster --name "$CLUSTER_NAME"
  if ((dry_run)) || docker ps -aq -f "name=^${REGISTRY_NAME}$" 2>/dev/null | grep -q .; then
    run docker rm -f "$REGISTRY_NAME"
  fi
}

[ $# -ge 1 ] || usage
command=$1
shift
while [ $# -gt 0 ]; do
  case $1 in
    --dry-run) dry_run=1 ;;
    --egress) egress_mode=${2:?--egress needs standins, gateways or selection}; egress_given=1; shift ;;
    --egress=*) egress_mode=${1#*=}; egress_given=1 ;;
    --plugin) plugin=${2:?--plugin needs envoyfilter, wasmplugin or wasmplugin-oci}; plugin_given=1; shift ;;
    --plugin=*) plugin=${1#*=}; plugin_given=1 ;;
    --gateway1-ips) gateway1_ips=${2:?}; shift ;;
    --gateway2-ips) gateway2_ips=${2:?}; shift ;;
    --port80) port80=1 ;;
    --no-network-policies) network_policies=0 ;;
    --module-build) module_build=${2:?--module-build needs native or docker}; shift ;;
    --pod-ip) pod_ip=${2:?}; shift ;;
    --client-log) client_log=${2:?}; shift ;;
    --proxy-log) proxy_log=${2:?}; shift ;;
    -h|--help) usage ;;
    *) echo "kind-demo: unknown option $1" >&2; usage ;;
  esac
  shift
done
case $plugin in
  envoyfilter|wasmplugin|wasmplugin-oci) ;;
  *) die "--plugin must be envoyfilter, wasmplugin or wasmplugin-oci, not '$plugin'" ;;
esac
case $egress_mode in
  standins) ;;
  gateways|selection)
    # The gateway variant is one set: the EnvoyFilter on the TLS port, with its policies.
    if ((plugin_given)) && [ "$plugin" != envoyfilter ]; then die "--egress $egress_mode installs the filter with the EnvoyFilter; --plugin $plugin is for the stand-ins"; fi
    if ((port80)); then die "--egress $egress_mode carries TLS only; --port80 is for the stand-ins"; fi
    if ! ((network_policies)); then die "--egress $egress_mode relies on its NetworkPolicies (only the gateways may leave); --no-network-policies is for the stand-ins"; fi
    ;;
  *) die "--egress must be standins, gateways or selection, not '$egress_mode'" ;;
esac
if [ -z "$module_build" ]; then
  if command -v apt-get >/dev/null 2>&1; then module_build=native; else module_build=docker; fi
fi
case $module_build in
  native|docker) ;;
  *) die "--module-build must be native or docker, not '$module_build'" ;;
esac
source_date_epoch=$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)
# Scratch files (certificates, rendered manifests); KIND_DEMO_WORK keeps them in a directory of yours.
if [ -n "${KIND_DEMO_WORK:-}" ]; then
  work=$KIND_DEMO_WORK
  mkdir -p "$work"
else
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
((dry_run)) && echo "kind-demo: dry run: printing the commands of '$command' instead of running them"

case $command in
  up) cmd_up ;;
  verify) cmd_verify ;;
  down) cmd_down ;;
  -h|--help|help) usage ;;
  *) echo "kind-demo: unknown command '$command' (expected up, verify or down)" >&2; usage ;;
esac
