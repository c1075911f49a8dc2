#!/usr/bin/env bash
# The project's test command (make test): the floor (gofmt, go vet, staticcheck), the unit and
# differential tests under the race detector, a short run of every fuzz test, then the VM tests.
# FUZZTIME (default 5s) sets the length of each fuzz run; VM=0 skips the VM tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/usr/local/go/bin:$PATH

echo "== gofmt"
bad=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$bad" ]; then echo "gofmt would change: $bad"; exit 1; fi
echo "== go vet"
go vet ./...
echo "== staticcheck"
go tool staticcheck ./...
echo "== build (static, no cgo)"
CGO_ENABLED=0 go build -o /dev/null ./cmd/modload

echo "== go test -race"
go test -race -count=1 -timeout 45m -skip '^TestVM' ./...

echo "== fuzz (each ${FUZZTIME:-5s})"
for pkg in $(go list ./...); do
	for f in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "-- $pkg $f"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "${FUZZTIME:-5s}" "$pkg"
	done
done

if [ "${VM:-1}" != 0 ]; then
	echo "== VM tests (qemu, Debian kernel)"
	go test -count=1 -timeout 60m -v -run '^TestVM' ./...
fi
