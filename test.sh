#!/usr/bin/env bash
# Runs every test of every Go module in this repository, with the race
# detector: the library at the root and the nested modules (benchmarks/,
# e2e/, ...) that keep heavy dependencies out of the library's go.mod.
# Arguments go to every `go test`, e.g. ./test.sh -count=1 -run Browser
set -uo pipefail
cd "$(dirname "$0")"

# The Node.js client tests (e2e/) need the ws version that
# e2e/node/package-lock.json pins; without node and npm they skip, except
# with CI=true, where .ci/run installs them.
if [ ! -d e2e/node/node_modules ] && command -v npm >/dev/null; then
	echo "== npm ci in e2e/node"
	(cd e2e/node && npm ci --no-audit --no-fund)
fi

failed=()
for mod in $(find . -name go.mod -not -path './.git/*' | sort); do
	dir=$(dirname "$mod")
	echo "== go test -race $* ./... in ${dir}"
	if ! (cd "$dir" && go test -race "$@" ./...); then
		failed+=("$dir")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "FAILED in: ${failed[*]}"
	exit 1
fi
echo "all modules passed"
