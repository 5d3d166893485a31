#!/usr/bin/env bash
# bench/rtt.sh: how many network round trips arbo waits on, one after the
# other, for a first `apply --bootstrap` and a no-op `plan`, measured as a
# user would see them: the same command on a fresh lab without and with a
# fixed one-way delay on every connection (`arbo-lab up --delay`), and
#
#     round trips = (t_delay - t_direct) / RTT,   RTT = 2 × delay.
#
#   sudo bench/rtt.sh                        # 3 rounds, 10 and 3 hosts × 3 jails, 25 ms
#   RUNS=5 SIZES="10 3" JAILS=3 DELAY=25ms bench/rtt.sh
#   REPO=DIR bench/rtt.sh                    # measure the checkout in DIR
#   FROM=SCRATCH bench/rtt.sh                # only report a kept (KEEP=1) run, also an unfinished one
#                                            # (STARTED, COMMIT: for a scratch dir without its meta file)
#
# Needs root and what the lab needs (LAB.md), like bench/run.sh. Run from
# anywhere inside the repository. Prints a markdown section on stdout and
# appends it to $OUT when OUT is set (e.g. OUT=bench/results.md).
#
# What it does, for each size in SIZES (hosts; examples/gen with JAILS
# jails each and a pfSense gateway), RUNS rounds, each round:
#   1. a fresh lab without delay (`arbo-lab up`, not timed): time the first
#      `arbo apply --bootstrap --auto-approve`, then a no-op
#      `arbo plan --detailed-exitcode` (must exit 0); take the lab down;
#   2. the same on a fresh lab with `--delay DELAY`.
# Times are wall clock of whole processes. The direct and delayed runs
# alternate within a round so that they see the same load on the machine.
# The figure is the difference of the medians divided by the RTT; each
# round's own difference is listed too, to show the spread. The difference
# only counts waiting that the delay adds: round trips on the critical path
# (TCP handshakes included, see docs/lab.md), not CPU time, and round trips
# that overlap (parallel machines) count once.
#
# It stops by itself: every command is bounded by `timeout`, and an EXIT
# trap stops the lab and removes the scratch dir (KEEP=1 keeps it).
set -euo pipefail

RUNS=${RUNS:-3}
SIZES=${SIZES:-"10 3"}
JAILS=${JAILS:-3}
DELAY=${DELAY:-25ms}
CMD_TIMEOUT=${CMD_TIMEOUT:-600}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=${REPO:-$(cd "$here/.." && pwd)}
lab=""
if [[ -n ${FROM:-} ]]; then
	work=$FROM
	KEEP=1
else
	work=$(mktemp -d /tmp/arbo-rtt.XXXXXX)
fi
bin=$work/bin

cleanup() {
	local rc=$?
	if [[ -n $lab && -d $lab ]]; then
		timeout 120 "$bin/arbo-lab" down --dir "$lab" >/dev/null 2>&1 || echo "rtt: arbo-lab down failed for $lab" >&2
	fi
	if [[ ${KEEP:-0} == 1 ]]; then
		echo "rtt: kept $work" >&2
	else
		rm -rf "$work"
	fi
	exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "rtt: $*" >&2; exit 1; }
[[ -n ${FROM:-} || $(id -u) == 0 ]] || die "the lab needs root (chroot sshd per machine)"
for c in go openssl timeout awk; do
	command -v "$c" >/dev/null || die "missing $c"
done
[[ $DELAY =~ ^[0-9]+ms$ ]] || die "DELAY must be in milliseconds, like 25ms (got $DELAY)"
delay_ms=${DELAY%ms}
(( delay_ms > 0 )) || die "DELAY must be more than 0ms"
rtt_ms=$((2 * delay_ms))

# trips DELAYED_MS DIRECT_MS: the round trips the difference is worth.
trips() { awk -v a="$1" -v b="$2" -v r="$rtt_ms" 'BEGIN {printf "%.0f", (a - b) / r}'; }
median() { sort -n "$1" | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
all() { sort -n "$1" | paste -sd' ' -; }

measure() {
	echo "rtt: building into $bin" >&2
	mkdir -p "$bin"
	(
		cd "$repo"
		go build -o "$bin/arbo" ./cmd/arbo
		go build -o "$bin/arbo-lab" ./internal/lab/cmd/arbo-lab
		CGO_ENABLED=0 go build -o "$bin/lab-emu" ./internal/lab/cmd/lab-emu
	)

	now_ms() { echo $(($(date +%s%N) / 1000000)); }

	# timed FILE EXPECTED_EXIT CMD...: runs CMD bounded, checks its exit code,
	# appends the wall time in ms to FILE.
	timed() {
		local file=$1 want=$2
		shift 2
		local t0 t1 rc=0
		t0=$(now_ms)
		timeout "$CMD_TIMEOUT" "$@" >"$file.log" 2>&1 || rc=$?
		t1=$(now_ms)
		if [[ $rc != "$want" ]]; then
			tail -20 "$file.log" >&2
			die "$(basename "$file") exited $rc, want $want"
		fi
		echo $((t1 - t0)) >>"$file.ms"
		printf '  %-28s %6d ms\n' "$(basename "$file")" $((t1 - t0)) >&2
	}

	# up TOPOLOGY DIR [FLAGS...]: a fresh lab; a lost race for a loopback port
	# with other labs on the box is tried again.
	up() {
		local topo=$1 dir=$2
		shift 2
		local try
		for try in 1 2 3; do
			if timeout "$CMD_TIMEOUT" "$bin/arbo-lab" up "$topo" --dir "$dir" --emu "$bin/lab-emu" "$@" >"$dir.up.log" 2>&1; then
				return 0
			fi
			tail -3 "$dir.up.log" >&2
			timeout 120 "$bin/arbo-lab" down --dir "$dir" >/dev/null 2>&1 || true
			rm -rf "$dir"
			echo "rtt: arbo-lab up failed; again" >&2
		done
		die "arbo-lab up failed 3 times"
	}

	commit=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)
	if [[ -n $(git -C "$repo" status --porcelain --untracked-files=no 2>/dev/null) ]]; then
		commit="$commit (with uncommitted changes)"
	fi
	printf '%s\n' "$(date -u '+%Y-%m-%d %H:%M UTC')" "$commit" "$(cut -d' ' -f1-3 /proc/loadavg)" >"$work/meta"
	for hosts in $SIZES; do
		topo=$work/topology-$hosts.yaml
		(cd "$repo" && go run ./examples/gen/cmd/arbo-gen -hosts "$hosts" -jails "$JAILS") >"$topo"
		# examples/gen names the cookie file beside the topology.
		[[ -f $work/erlang.cookie ]] || { openssl rand -hex 32 >"$work/erlang.cookie"; chmod 600 "$work/erlang.cookie"; }
		for i in $(seq 1 "$RUNS"); do
			for mode in direct delay; do
				echo "rtt: $hosts hosts, round $i/$RUNS, $mode" >&2
				lab=$work/lab-$hosts-$i-$mode
				flags=()
				[[ $mode == delay ]] && flags=(--delay "$DELAY")
				up "$topo" "$lab" "${flags[@]}"
				cfg=$lab/ssh_config
				timed "$work/$hosts-apply-$mode" 0 "$bin/arbo" apply --bootstrap --auto-approve --ssh-config "$cfg" "$topo"
				timed "$work/$hosts-plan-$mode" 0 "$bin/arbo" plan --detailed-exitcode --ssh-config "$cfg" "$topo"
				timeout 120 "$bin/arbo-lab" down --dir "$lab" >/dev/null 2>&1 || die "arbo-lab down failed"
				lab=""
			done
		done
	done
	cut -d' ' -f1-3 /proc/loadavg >>"$work/meta"
}

report() {
	local cpu started commit load_before load_after
	cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
	started=$(sed -n 1p "$work/meta" 2>/dev/null || true)
	commit=$(sed -n 2p "$work/meta" 2>/dev/null || true)
	load_before=$(sed -n 3p "$work/meta" 2>/dev/null || true)
	load_after=$(sed -n 4p "$work/meta" 2>/dev/null || true)
	started=${started:-${STARTED:-unknown}} commit=${commit:-${COMMIT:-unknown}} load_before=${load_before:-unknown}
	if [[ -z $load_after ]]; then
		load_after="$(cut -d' ' -f1-3 /proc/loadavg) (at report time: the run did not finish)"
	fi
	echo "## Round trips on the critical path ($started, commit $commit)"
	echo
	echo "Made by \`bench/rtt.sh\` (SIZES=\"$SIZES\" JAILS=$JAILS DELAY=$DELAY; the rounds are listed under \"per round\"): each command on a fresh"
	echo "lab of examples/gen without and with a ${delay_ms} ms one-way delay on every connection"
	echo "(RTT ${rtt_ms} ms); round trips = (median t_delay − median t_direct) / RTT; \"per round\" gives each"
	echo "round's own (t_delay − t_direct) / RTT."
	echo
	echo "- machine: $(nproc) CPUs, ${cpu:-unknown CPU}, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(go version | cut -d' ' -f3)"
	echo "- load average before / after: $load_before / $load_after: the machine is shared with other"
	echo "  work and loaded, so the direct times (and the spread) carry that load; the delay's share does not"
	echo
	echo "| topology | command | median t_direct | median t_delay | round trips | per round | t_direct runs (ms) | t_delay runs (ms) |"
	echo "| --- | --- | ---: | ---: | ---: | --- | --- | --- |"
	local hosts cmd name md my per j n
	for hosts in $SIZES; do
		for cmd in apply plan; do
			[[ -s $work/$hosts-$cmd-direct.ms && -s $work/$hosts-$cmd-delay.ms ]] || continue
			n=$(( $(wc -l <"$work/$hosts-$cmd-direct.ms") < $(wc -l <"$work/$hosts-$cmd-delay.ms") ? $(wc -l <"$work/$hosts-$cmd-direct.ms") : $(wc -l <"$work/$hosts-$cmd-delay.ms") ))
			case $cmd in
			apply) name="first apply --bootstrap" ;;
			plan) name="no-op plan" ;;
			esac
			md=$(median "$work/$hosts-$cmd-direct.ms")
			my=$(median "$work/$hosts-$cmd-delay.ms")
			per=""
			for j in $(seq 1 "$n"); do
				per+="$(trips "$(sed -n "${j}p" "$work/$hosts-$cmd-delay.ms")" "$(sed -n "${j}p" "$work/$hosts-$cmd-direct.ms")") "
			done
			printf '| %d hosts × %d jails | %s | %d ms | %d ms | **%s** | %s | %s | %s |\n' "$hosts" "$JAILS" "$name" \
				"$md" "$my" "$(trips "$my" "$md")" "${per% }" "$(all "$work/$hosts-$cmd-direct.ms")" "$(all "$work/$hosts-$cmd-delay.ms")"
		done
	done
}

[[ -n ${FROM:-} ]] || measure
report >"$work/report.md"
cat "$work/report.md"
if [[ -n ${OUT:-} ]]; then
	{ echo; cat "$work/report.md"; } >>"$OUT"
	echo "rtt: appended to $OUT" >&2
fi
