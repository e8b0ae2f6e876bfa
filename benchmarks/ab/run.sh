#!/usr/bin/env bash
# A/B benchmark of two chatroom trees, side by side in one run.
#
#   benchmarks/ab/run.sh BEFORE AFTER
#
# BEFORE and AFTER are each a directory holding a checkout of the repository
# (its benchmarks/ module is built as it is, uncommitted edits included), or
# a commit of this repository, which gets a detached worktree under
# $AB_DIR/trees/ for building only (remove them with git worktree prune
# after deleting $AB_DIR).
#
# It builds benchmarks/cmd/chatserver from each tree, loadgen from BEFORE
# (one measuring instrument for both sides), and an out-of-tree
# single-room server with pacing off (unpaced/main.go) against each tree;
# then runs every scenario as a pair, before and after back to back, the
# order alternating from pair to pair, ROUNDS rounds, and prints per
# scenario the medians, the ratio after/before and the spread of the pair
# ratios. Everything is on 127.0.0.1 and bounded.
#
# Environment:
#   ROUNDS=9                 rounds (each about 75-80 s with every scenario: ~12 min)
#   SCENARIOS=a,b,...        default: driver.py's DEFAULT, every scenario but connections-5000 and
#                            connections-19000 (loadgen -conns; both trees need chatserver -memstats)
#   MAX_MINUTES=15           no new round starts after this
#   QUIET_WAIT=15            before each pair, wait up to this many s for other work < QUIET_CORES
#   QUIET_CORES=0.25         (a shared machine: other sessions' builds and tests show as "other cores";
#                            summary.md also has a table of the pairs quiet by that measure)
#   LOADGEN_FROM=before      or after: which tree's loadgen to use
#   AB_DIR=${TMPDIR:-/tmp}/chatroom-ab   where trees, builds and logs go
#   OUT=$AB_DIR/runs/...      where the logs go (default: a new timestamped dir)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(git -C "$here" rev-parse --show-toplevel)
work=${AB_DIR:-${TMPDIR:-/tmp}/chatroom-ab}
[[ $# -eq 2 ]] || { sed -n '2,28p' "$0"; exit 2; }

resolve() { # ARG -> absolute tree path
	local arg=$1
	if [[ -d $arg && -f $arg/benchmarks/go.mod ]]; then
		(cd "$arg" && pwd)
		return
	fi
	local sha
	sha=$(git -C "$repo" rev-parse --verify -q "$arg^{commit}") || { echo "not a tree or a commit of $repo: $arg" >&2; exit 2; }
	local dir=$work/trees/${sha:0:12}
	if [[ ! -d $dir ]]; then
		mkdir -p "$work/trees"
		git -C "$repo" worktree add --detach "$dir" "$sha" >&2
	fi
	[[ $(git -C "$dir" rev-parse HEAD) == "$sha" ]] || { echo "$dir is not at $sha" >&2; exit 1; }
	echo "$dir"
}

before=$(resolve "$1")
after=$(resolve "$2")
rounds=${ROUNDS:-9}
out=${OUT:-$work/runs/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
mkdir -p "$work/runs"
ln -sfn "$out" "$work/runs/latest"
exec > >(tee -a "$out/run.log") 2>&1

describe() { # SIDE TREE
	local rev dirty
	rev=$(git -C "$2" rev-parse --short HEAD 2>/dev/null || echo '?')
	dirty=$(git -C "$2" status --porcelain 2>/dev/null | wc -l)
	echo "$1: $2 at $rev, $dirty uncommitted paths"
}
{
	echo "# A/B run $(date -u +%FT%TZ)"
	describe before "$before"
	describe after "$after"
	echo "$(go version); $(nproc) CPUs; $(uname -r); loadgen from ${LOADGEN_FROM:-before}; rounds $rounds"
	echo
} | tee "$out/summary.md"

build() { # SIDE TREE
	local side=$1 tree=$2 bin=$out/bin/$1
	mkdir -p "$bin"
	echo "building $side from $tree/benchmarks"
	(cd "$tree/benchmarks" && go build -o "$bin/" ./cmd/chatserver ./cmd/loadgen)
	# The unpaced server: this directory's unpaced.go.tmpl against the tree's root
	# module. Optional: a tree whose API it no longer fits just skips it.
	local u=$out/unpaced-$side
	mkdir -p "$u"
	local off='math.Inf(1)'
	grep -qs '^const Off\b' "$tree"/*.go && off=chatroom.Off
	sed "s/OFF/$off/g" "$here/unpaced.go.tmpl" >"$u/main.go"
	cp "$tree/go.sum" "$u/go.sum"
	local gover
	gover=$(awk '$1 == "go" {print $2; exit}' "$tree/go.mod")
	cat >"$u/go.mod" <<-EOF
		module chatbench/unpaced

		go $gover

		require github.com/seed014c2c51/chatroom v0.0.0

		replace github.com/seed014c2c51/chatroom => $tree
	EOF
	if ! (cd "$u" && GOFLAGS=-mod=mod go build -o "$bin/unpaced" . >"$u/build.log" 2>&1); then
		echo "WARNING: the unpaced server does not build against $side ($u/build.log); fanout-unpaced is skipped"
		cat "$u/build.log"
		rm -f "$bin/unpaced"
	fi
	sha256sum "$bin"/* | sed "s|$out/||"
}
build before "$before"
build after "$after"

ulimit -n 65536 2>/dev/null || true # loadgen raises its own limit; the default (20000) is plenty
lg=$out/bin/${LOADGEN_FROM:-before}/loadgen
args=(--out "$out" --loadgen "$lg" --rounds "$rounds" --max-minutes "${MAX_MINUTES:-15}"
	--before-server "$out/bin/before/chatserver" --after-server "$out/bin/after/chatserver")
[[ -x $out/bin/before/unpaced ]] && args+=(--before-unpaced "$out/bin/before/unpaced")
[[ -x $out/bin/after/unpaced ]] && args+=(--after-unpaced "$out/bin/after/unpaced")
[[ -n ${SCENARIOS:-} ]] && args+=(--scenarios "$SCENARIOS")
args+=(--quiet-wait "${QUIET_WAIT:-15}" --quiet-cores "${QUIET_CORES:-0.25}")
python3 "$here/driver.py" "${args[@]}"

# Nothing of this run may outlive it.
left=$(pgrep -f "^$out/bin/" || true)
if [[ -n $left ]]; then
	echo "WARNING: processes of this run still running: $left; ending them"
	kill $left || true
fi
echo "logs: $out (summary.md, runs.jsonl, progress.log, per-run JSON and server logs)"
