#!/usr/bin/env bats
# End-to-end tests in Kubewarden's own host. Needs kwctl and bats: `make e2e-tests`.
# CI runs the same cases through host-tests/ (a wasmtime host that behaves as policy-server does).

@test "Inject the sidecar into the seed's sleep pod" {
  run kwctl run --request-path samples/sleep/admission-review.json annotated-policy.wasm
  echo "output = ${output}"
  [ "$status" -eq 0 ]
  [[ "$output" == *'"allowed":true'* ]]
  [[ "$output" == *'"patchType":"JSONPatch"'* ]]
  patch=$(echo "$output" | tail -n 1 | jq -r '.patch | @base64d')
  echo "patch = ${patch}"
  [[ "$patch" == *'istio-proxy'* ]]
}

@test "Leave a pod that opts out alone" {
  run kwctl run --request-path host-tests/fixtures/annotation-false-policy-enabled/request.json annotated-policy.wasm
  echo "output = ${output}"
  [ "$status" -eq 0 ]
  [[ "$output" == *'"allowed":true'* ]]
  [[ "$output" != *'"patch"'* ]]
}

@test "Refuse an unknown policy value in the settings" {
  run kwctl run --request-path samples/sleep/admission-review.json --settings-json '{"policy":"Enabled"}' annotated-policy.wasm
  echo "output = ${output}"
  [ "$status" -ne 0 ]
  [[ "$output" == *'policy must be `enabled` or `disabled`'* ]]
}
