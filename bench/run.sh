#!/usr/bin/env bash
# bench/run.sh: how fast arbo plans and applies against the lab, next to the
# floor (the least any tool can spend reading the same files over SSH).
#
#   sudo bench/run.sh                  # 5 rounds, 20 hosts × 3 jails (18 files each)
#   RUNS=3 HOSTS=10 JAILS=4 bench/run.sh
#
# Needs: root, the go command, openssh-server, busybox-static and
# bash-static (the lab's needs, LAB.md), openssl. Run from anywhere inside
# the repository.
#
# What it does:
#   1. builds arbo, arbo-lab, lab-emu and bench/floor into a scratch dir;
#   2. generates a topology (examples/gen: HOSTS hosts, JAILS jails each and
#      a pfSense gateway), makes its cookie, and renders it once: the
#      manifest lists the files arbo manages on each machine
#      (per host: pf.conf, rc.conf.local, ezjail.conf, and per jail its ezjail
#      config, resolv.conf, .erlang.cookie, env and vm.args: 3 + 5 × JAILS);
#   3. RUNS rounds, each on a FRESH lab (`arbo-lab up`, not timed): a fresh
#      lab is the only sound "first apply": the emulator keeps state (jails,
#      interfaces, routes, the loaded ruleset, sshd's host keys) in places
#      that a reset of the roots could miss. In each round, timed as whole
#      processes (wall clock, so that process start, load and render count
#      as they do for a user):
#        first apply   arbo apply --bootstrap --auto-approve on the fresh lab
#        floor         bench/floor: one SSH+SFTP connection per machine, all
#                      in parallel, reading every managed file, nothing else
#        no-op plan    arbo plan --detailed-exitcode (must exit 0)
#        no-op apply   arbo apply --auto-approve (nothing to do)
#      The floor, plan and apply alternate within a round so that they see
#      the same load on the machine;
#   4. prints the medians and their ratios to the floor's median as a
#      markdown table, and writes it with the machine's description to
#      $OUT (default bench/results.md).
#
# It stops by itself: every command is bounded by `timeout`, and an EXIT
# trap stops the lab and removes the scratch dir (KEEP=1 keeps the scratch
# dir, for bench/trace or pprof afterwards).
set -euo pipefail

RUNS=${RUNS:-5}
HOSTS=${HOSTS:-20}
JAILS=${JAILS:-3}
CMD_TIMEOUT=${CMD_TIMEOUT:-300}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
OUT=${OUT:-$here/results.md}
work=$(mktemp -d /tmp/arbo-bench.XXXXXX)
bin=$work/bin
lab=""

cleanup() {
	local rc=$?
	if [[ -n $lab && -d $lab ]]; then
		timeout 120 "$bin/arbo-lab" down --dir "$lab" >/dev/null 2>&1 || echo "bench: arbo-lab down failed for $lab" >&2
	fi
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "bench: kept $work" >&2
	else
		rm -rf "$work"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "the lab needs root (chroot sshd per machine)"
for c in go sshd openssl timeout; do
	command -v "$c" >/dev/null || [[ -x /usr/sbin/$c ]] || die "missing $c"
done

echo "bench: building into $bin" >&2
mkdir -p "$bin"
(
	cd "$repo"
	go build -o "$bin/arbo" ./cmd/arbo
	go build -o "$bin/arbo-lab" ./internal/lab/cmd/arbo-lab
	CGO_ENABLED=0 go build -o "$bin/lab-emu" ./internal/lab/cmd/lab-emu
	go build -o "$bin/floor" ./bench/floor
	go run ./examples/gen/cmd/arbo-gen -hosts "$HOSTS" -jails "$JAILS" >"$work/topology.yaml"
)
topo=$work/topology.yaml
openssl rand -hex 32 >"$work/erlang.cookie"
chmod 600 "$work/erlang.cookie"
SOURCE_DATE_EPOCH=0 "$bin/arbo" render "$topo" -o "$work/render" >/dev/null 2>&1 || die "arbo render failed"
manifest=$work/render/manifest.json
files_host=$(find "$work/render/host1" -type f | wc -l)
files_all=$(find "$work/render" -path "$work/render/exports" -prune -o -type f ! -name manifest.json -print | wc -l)
echo "bench: $HOSTS hosts × $JAILS jails + gateway: $files_host managed files per host, $files_all in all" >&2

# now_ms prints a monotonic-enough wall clock in milliseconds.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# timed NAME EXPECTED_EXIT CMD...: runs CMD bounded, checks its exit code,
# appends the wall time in ms to $work/NAME.ms.
timed() {
	local name=$1 want=$2
	shift 2
	local t0 t1 rc=0
	t0=$(now_ms)
	timeout "$CMD_TIMEOUT" "$@" >"$work/$name.log" 2>&1 || rc=$?
	t1=$(now_ms)
	if [[ $rc != "$want" ]]; then
		tail -20 "$work/$name.log" >&2
		die "$name exited $rc, want $want"
	fi
	echo $((t1 - t0)) >>"$work/$name.ms"
	printf '  %-12s %6d ms\n' "$name" $((t1 - t0)) >&2
}

ssh_cfg() { echo "$lab/ssh_config"; }
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

for i in $(seq 1 "$RUNS"); do
	echo "bench: round $i/$RUNS" >&2
	lab=$work/lab$i
	# up can lose a race for a loopback port with other labs on the box:
	# a failed up cleans after itself, so try again.
	for try in 1 2 3; do
		if timeout "$CMD_TIMEOUT" "$bin/arbo-lab" up "$topo" --dir "$lab" --emu "$bin/lab-emu" >"$work/up$i.log" 2>&1; then
			break
		fi
		tail -3 "$work/up$i.log" >&2
		timeout 120 "$bin/arbo-lab" down --dir "$lab" >/dev/null 2>&1 || true
		rm -rf "$lab"
		[[ $try == 3 ]] && die "arbo-lab up failed 3 times"
		echo "bench: arbo-lab up failed; again" >&2
	done
	timed first-apply 0 "$bin/arbo" apply --bootstrap --auto-approve --confirm-timeout 3s --ssh-config "$(ssh_cfg)" "$topo"
	timed floor 0 "$bin/floor" -manifest "$manifest" -ssh-config "$(ssh_cfg)"
	timed noop-plan 0 "$bin/arbo" plan --detailed-exitcode --ssh-config "$(ssh_cfg)" "$topo"
	timed noop-apply 0 "$bin/arbo" apply --auto-approve --confirm-timeout 3s --ssh-config "$(ssh_cfg)" "$topo"
	timed floor 0 "$bin/floor" -manifest "$manifest" -ssh-config "$(ssh_cfg)"
	timeout 120 "$bin/arbo-lab" down --dir "$lab" >/dev/null 2>&1 || die "arbo-lab down failed"
	lab=""
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
all() { sort -n "$1" | paste -sd' ' -; }
floor_ms=$(median "$work/floor.ms")

table() {
	echo "| measure | median | ratio to floor | target | all runs (ms) |"
	echo "| --- | ---: | ---: | ---: | --- |"
	local name target m
	for name in floor noop-plan noop-apply first-apply; do
		case $name in
		noop-plan) target="≤ 2×" ;;
		first-apply) target="≤ 3×" ;;
		*) target="" ;;
		esac
		m=$(median "$work/$name.ms")
		printf '| %s | %d ms | %s× | %s | %s |\n' "$name" "$m" \
			"$(awk -v a="$m" -v b="$floor_ms" 'BEGIN {printf "%.1f", a / b}')" "$target" "$(all "$work/$name.ms")"
	done
}

cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
{
	echo "# arbo benchmark: plan and apply against the lab"
	echo
	echo "Made by \`bench/run.sh\` on $(date -u +%Y-%m-%d) at commit $(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)."
	echo
	echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3)"
	echo "- load average before / after: $load_before / $load_after (other work on the machine shares its CPUs)"
	echo "- topology: examples/gen, $HOSTS hosts × $JAILS jails and a pfSense gateway: $files_host managed files per host, $files_all in all"
	echo "- $RUNS rounds, each on a fresh lab; the floor runs twice a round (before the no-op plan and after the no-op apply)"
	echo
	table
} >"$work/results.md"
# Keep the sections other benchmarks append to $OUT (bench/rtt.sh): from its
# first "## " heading on.
if [[ -f $OUT ]] && grep -q '^## ' "$OUT"; then
	{ echo; awk 'f || /^## / {f = 1; print}' "$OUT"; } >>"$work/results.md"
fi
cp "$work/results.md" "$OUT"
echo
table
echo
echo "bench: wrote $OUT" >&2
