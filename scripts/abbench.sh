#!/bin/sh
# Compares two builds of demes on one benchmark, in alternating runs, so
# that both see the same hour of a noisy shared machine: the same binary's
# capacity has moved by a third between two runs ten minutes apart here
# (docs/BENCHMARKS.md, "The machine"), far more than most changes are worth.
#
#   scripts/abbench.sh BASE NEW [ROUNDS] [-- BENCH ARGS...]
#
# BASE and NEW are git revisions (a commit, a branch, HEAD); each is built
# from a temporary worktree. ROUNDS (default 3) is how many runs of each,
# alternating BASE, NEW, BASE, NEW... (the first one of each round changes
# sides every round, so that neither always runs first). BENCH ARGS default
# to `throughput --senders 1024`. For each run the script prints the figures
# named by FIGURES (a grep -E pattern over the names; by default the
# five-process capacity, its CPU a message and the reference ceiling's
# capacity), and at the end each figure's median over the rounds for BASE
# and NEW and their ratio. Nothing else may run on the machine meanwhile,
# or the comparison says more about it than about the builds.
set -eu

if [ $# -lt 2 ]; then
	sed -n '2,17p' "$0" >&2
	exit 2
fi
base=$1
new=$2
shift 2
rounds=3
if [ $# -gt 0 ] && [ "$1" != "--" ]; then
	rounds=$1
	shift
fi
if [ $# -gt 0 ] && [ "$1" = "--" ]; then
	shift
fi
if [ $# -eq 0 ]; then
	set -- throughput --senders 1024
fi
figures=${FIGURES:-'^throughput capacity, 5 nodes, demes serve processes$|^CPU per committed message \(all nodes, demes serve processes|^reference ceiling: capacity'}

cd "$(dirname "$0")/.."
work=$(mktemp -d /tmp/abbench.XXXXXX)
cleanup() {
	for side in base new; do
		if [ -d "$work/$side" ]; then
			git worktree remove --force "$work/$side" >/dev/null 2>&1 || true
		fi
	done
	rm -rf "$work"
}
trap cleanup EXIT INT TERM

for side in base new; do
	if [ $side = base ]; then rev=$base; else rev=$new; fi
	git worktree add --detach "$work/$side" "$rev" >/dev/null 2>&1
	(cd "$work/$side" && go build -o "$work/demes-$side" ./cmd/demes)
	echo "abbench: $side is $(git rev-parse --short "$rev") ($rev)" >&2
done

# run SIDE ROUND BENCH ARGS...: one benchmark run of SIDE, its chosen
# figures appended to $work/figs as "SIDE<TAB>NAME<TAB>VALUE<TAB>UNIT" lines.
run() {
	side=$1 round=$2
	shift 2
	echo "abbench: round $round, $side: $(uptime | sed 's/.*load/load/')" >&2
	"$work/demes-$side" bench "$@" --json --quiet --home "$work/home-$side" >"$work/out.json" 2>"$work/err.log" || {
		echo "abbench: the $side run failed:" >&2
		tail -5 "$work/err.log" >&2
		exit 1
	}
	python3 - "$side" "$figures" "$work/out.json" <<'EOF' | tee -a "$work/figs"
import json, re, sys
side, pattern, path = sys.argv[1], re.compile(sys.argv[2]), sys.argv[3]
for f in json.load(open(path))["figures"]:
    if pattern.search(f["name"]):
        print(f"{side}\t{f['name']}\t{f['median']}\t{f['unit']}")
EOF
}

: >"$work/figs"
i=1
while [ "$i" -le "$rounds" ]; do
	if [ $((i % 2)) -eq 1 ]; then first=base second=new; else first=new second=base; fi
	run "$first" "$i" "$@"
	run "$second" "$i" "$@"
	i=$((i + 1))
done

python3 - "$work/figs" <<'EOF'
import statistics, sys
vals = {}
for line in open(sys.argv[1]):
    side, name, value, unit = line.rstrip("\n").split("\t")
    vals.setdefault((name, unit), {}).setdefault(side, []).append(float(value))
print("figure\tbase median\tnew median\tnew / base\tbase runs\tnew runs")
for (name, unit), sides in vals.items():
    b, n = sides.get("base", []), sides.get("new", [])
    if not b or not n:
        continue
    mb, mn = statistics.median(b), statistics.median(n)
    ratio = mn / mb if mb else float("nan")
    print(f"{name} ({unit})\t{mb:.4g}\t{mn:.4g}\t{ratio:.3f}\t{' '.join(f'{x:.4g}' for x in b)}\t{' '.join(f'{x:.4g}' for x in n)}")
EOF
