#!/usr/bin/env bash
# `registryd check --images FILE`: the RegistryContainsRequiredImages check against a real
# docker-registry with htpasswd auth, reached as the ModuleConfig's section says (imagesRepo,
# scheme, credentials). All present: "<registry>: all N items are checked", exit 0. Missing
# ones: the first 5 named with the upstream's reason, exit 1. A bad list line or a mode without
# a registry: exit 2. Wrong credentials and a stopped registry: exit 1 with the reason, fast.
source "$(dirname "$0")/lib.sh"

make_sample_image "$WORK/image"
htpasswd -Bbn user secret >"$WORK/htpasswd"
p=$(free_port)
start_docker_registry "$p" "auth:
  htpasswd:
    realm: basic-realm
    path: $WORK/htpasswd"
registry="127.0.0.1:$p"
for ref in deckhouse/ee:v1.60.1 deckhouse/ee/install:v1.60.1 deckhouse/ee/modules/ingress:v1; do
  timeout 120 skopeo copy --dest-tls-verify=false --dest-creds user:secret "oci:$WORK/image:latest" \
    "docker://$registry/$ref" >"$WORK/seed.log" 2>&1 || { cat "$WORK/seed.log" >&2; fail "seed $ref"; }
done
digest=$(timeout 60 skopeo inspect --raw --tls-verify=false --creds user:secret "docker://$registry/deckhouse/ee:v1.60.1" |
  sha256sum | cut -d' ' -f1)
digest="sha256:$digest"

# mc PASSWORD: a Direct-mode ModuleConfig for the registry above.
mc() {
  module_config Direct "      direct:
        imagesRepo: $registry/deckhouse/ee
        scheme: HTTP
        username: user
        password: $1" >"$WORK/mc.yaml"
}
# check LIST [ARGS...]: runs the check; output in $WORK/out, exit code in $rc.
check() {
  local list=$1; shift
  rc=0
  timeout 120 "$REGISTRYD" check --config "$WORK/mc.yaml" --images "$list" "$@" >"$WORK/out" 2>&1 || rc=$?
}

echo "# every required image is there"
mc secret
cat >"$WORK/all.txt" <<EOF
# the platform's own image, by digest and by tag
@$digest
:v1.60.1
install:v1.60.1
install@$digest
modules/ingress:v1
$registry/deckhouse/ee/modules/ingress@$digest
EOF
check "$WORK/all.txt"
assert_eq "$rc" "0" "exit code, all present: $(cat "$WORK/out")"
assert_eq "$(cat "$WORK/out")" "$registry: all 6 items are checked" "message"

echo "# missing images: the first 5 are named, in list order, with the upstream's reason"
{
  echo ":v1.60.1"
  for i in 1 2 3 4 5 6 7; do echo "missing-$i:v1"; done
  echo "@sha256:$(printf '%064d' 0)"
} >"$WORK/missing.txt"
check "$WORK/missing.txt"
assert_eq "$rc" "1" "exit code with missing images: $(cat "$WORK/out")"
assert_contains "$(head -n1 "$WORK/out")" "$registry: " "first line"
assert_contains "$(head -n1 "$WORK/out")" "items failed the check" "first line"
assert_eq "$(grep -c '^  ' "$WORK/out")" "5" "failures named"
# A HEAD's 404 has no body: the code comes from the route.
assert_eq "$(sed -n 2p "$WORK/out")" "  missing-1:v1: 404 MANIFEST_UNKNOWN: manifest unknown to $registry" "first failure"
assert_eq "$(sed -n 6p "$WORK/out" | cut -d: -f1)" "  missing-5" "fifth failure"

echo "# --parallel 1 --attempts 1 check everything in order when told to"
check "$WORK/missing.txt" --parallel 1 --attempts 1
assert_eq "$rc" "1" "exit code"
assert_contains "$(head -n1 "$WORK/out")" "5 of 9 items failed the check (stopped after 5 failures, 6 checked)" "sequential stop"

echo "# a bad line is an input error naming the line"
printf ':v1.60.1\ninstall\nother.example.com/x:1\n' >"$WORK/bad.txt"
check "$WORK/bad.txt"
assert_eq "$rc" "2" "exit code for a bad list"
assert_contains "$(cat "$WORK/out")" "bad.txt:2: 'install': names no tag and no digest" "bad line"
assert_contains "$(cat "$WORK/out")" "bad.txt:3: 'other.example.com/x:1': names registry other.example.com, not the target $registry" "other registry"
check "$WORK/no-such-file"
assert_eq "$rc" "2" "exit code for a missing list"

echo "# wrong credentials: every item fails with UNAUTHORIZED, without retries"
mc wrong
check "$WORK/all.txt"
assert_eq "$rc" "1" "exit code with wrong credentials"
assert_contains "$(sed -n 2p "$WORK/out")" "  @$digest: 401 UNAUTHORIZED" "unauthorized reason"

echo "# Local mode has no registry to check"
module_config Local >"$WORK/mc.yaml"
check "$WORK/all.txt"
assert_eq "$rc" "2" "exit code in Local mode"
assert_contains "$(cat "$WORK/out")" "Local mode has no upstream registry" "Local message"

echo "# a stopped registry: retried, then named as unreachable, within seconds"
mc secret
stop_pid "$DOCKER_REGISTRY_PID"
start=$SECONDS
check "$WORK/all.txt" --timeout-seconds 2
assert_eq "$rc" "1" "exit code with the registry stopped"
assert_contains "$(sed -n 2p "$WORK/out")" "  @$digest: connect: cannot connect to $registry" "unreachable reason"
assert_contains "$(sed -n 2p "$WORK/out")" "(after 3 attempts)" "retried"
[ $((SECONDS - start)) -le 15 ] || fail "the check of a stopped registry took $((SECONDS - start)) s"

echo "PASS"
