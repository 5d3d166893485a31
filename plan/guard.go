package plan

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/arbo-project/arbo/remote"
)

// Commit-confirmed guards with generations (issue 11, item 2).
//
// Before a firewall change (pf on a host, config.xml on the gateway) apply
// arms an on-box guard: a constant script, started detached with daemon(8),
// that sleeps out the confirmation time and then rolls the change back
// unless it was confirmed. Each firewall has one state file, one line:
//
//	TOKEN STATE DEADLINE ARG
//
// TOKEN names the guard (a random word arbo draws per run), STATE is armed,
// confirmed, stooddown or rolledback, DEADLINE is when the guard acts (the
// box's clock, seconds since the epoch) and ARG what it restores (pf's
// previous state, enabled or disabled; or the config.xml backup to put
// back). The file is the guards' only truth: a guard acts only while the
// file names it and says armed, so
//   - a guard stands down once a newer run has armed its own guard (taken
//     over) or confirmed: the file no longer names it;
//   - a run finds a stale guard (armed, another token: its run was cut or
//     killed before confirming) when it arms its own, and takes over: the
//     stale guard stands down, and the new guard restores what the stale one
//     would have, the last confirmed state (ARG is inherited), not the
//     unconfirmed change it finds loaded;
//   - a stale guard that no newer run takes over still rolls back its own
//     unconfirmed change at its deadline.
// Check and act are not atomic on the box, so time separates them: a run
// does not take over a guard within guardMargin seconds of its deadline
// (it waits until the guard has acted), and a confirmation closer than
// confirmMargin seconds to the deadline is refused (the guard may be
// rolling back). This assumes the box's sleep(1) and clock agree within
// those margins.

// Guard kinds.
type guardKind struct {
	name     string // in logs and errors
	script   string // the constant script
	path     string // where it lives on the machine
	state    string // its state file
	pidStem  string // daemon(8)'s pid file, per token
	restores string // what a rollback restores, for errors
}

const (
	guardMargin    = 10   // seconds around a stale guard's deadline when a run waits instead of taking over
	guardMarginS   = "10" // the same, for the script
	confirmMarginS = "2"  // seconds before the deadline after which a confirmation is refused
)

// guardCommon is the body both guard scripts share after their rollback
// function. Usage:
//
//	guard arm STATE TOKEN SECS ARG PIDFILE   take over a stale guard, arm, start the waiter
//	guard wait STATE TOKEN SECS              (the waiter) sleep, then roll back unless settled
//	guard confirm STATE TOKEN                the change is proven: the guard stands down
//	guard standdown STATE TOKEN              the change is gone already: the guard stands down
//
// Exit 75 from arm: a stale guard acts within the margin: wait the seconds
// it prints, then arm again. Exit 3 from confirm: the state file no longer
// names this guard armed; 4: too close to the deadline.
const guardCommon = `
put() {
	printf '%s %s %s %s\n' "$1" "$2" "$3" "$4" > "$state.tmp.$$" && mv -f "$state.tmp.$$" "$state"
}
get() {
	tok=; st=; dl=0; arg=
	if [ -r "$state" ]; then read -r tok st dl arg < "$state"; fi
	case $dl in ''|*[!0-9]*) dl=0 ;; esac
}
cmd=$1; state=$2; me=$3
case $cmd in
arm)
	get
	now=$(date +%s)
	new=$5
	if [ "$st" = armed ] && [ "$tok" != "$me" ]; then
		left=$((dl - now))
		if [ "$left" -gt -` + guardMarginS + ` ] && [ "$left" -lt ` + guardMarginS + ` ]; then
			echo "wait $((left + 3))"
			exit 75
		fi
		new=$arg
		logger -t arbo "$what: the guard of an unconfirmed earlier run ($tok) stands down; $me takes over and restores what it would have"
	fi
	put "$me" armed "$((now + $4))" "$new" || exit 1
	daemon -f -p "$6" /bin/sh "$0" wait "$state" "$me" "$4" || exit 1
	echo "armed $new"
	;;
wait)
	sleep "$4"
	get
	if [ "$tok" != "$me" ] || [ "$st" != armed ]; then exit 0; fi
	rollback "$arg"
	put "$me" rolledback "$dl" "$arg"
	logger -t arbo "$what: no confirmation within $4 s: $restored"
	;;
confirm|standdown)
	get
	if [ "$tok" != "$me" ] || [ "$st" != armed ]; then echo "$st by $tok"; exit 3; fi
	now=$(date +%s)
	if [ "$cmd" = confirm ] && [ $((dl - now)) -lt ` + confirmMarginS + ` ]; then echo "deadline $dl, now $now"; exit 4; fi
	s=confirmed
	if [ "$cmd" = standdown ]; then s=stooddown; fi
	put "$me" "$s" "$dl" "$arg" || exit 1
	;;
*)
	echo "usage: guard arm|wait|confirm|standdown STATE TOKEN ..." >&2
	exit 2
	;;
esac
`

// pfGuardScript rolls pf back: the previous rules are still in /etc/pf.conf
// (the new ones are promoted only after the confirmation), or pf is
// disabled if it was off before.
const pfGuardScript = `#!/bin/sh
# arbo: commit-confirmed guard for pf (see plan/guard.go).
what=pf
restored="previous rules restored"
rollback() {
	if [ "$1" = disabled ]; then
		pfctl -d
	elif [ -e /etc/pf.conf ]; then
		pfctl -f /etc/pf.conf
	fi
}
` + guardCommon

// configGuardScript puts the previous config.xml (arbo's backup) back and
// makes pfSense load it.
const configGuardScript = `#!/bin/sh
# arbo: commit-confirmed guard for the gateway's config.xml (see plan/guard.go).
what=config.xml
restored="previous configuration restored"
rollback() {
	cp "$1" /cf/conf/config.xml
	rm -f /tmp/config.cache
	/etc/rc.filter_configure_sync
}
` + guardCommon

var (
	pfGuard = guardKind{name: "pf", script: pfGuardScript, path: StateDir + "/pf-guard.sh",
		state: StateDir + "/pf-guard", pidStem: "/var/run/arbo-pf-guard", restores: "the previous rules"}
	configGuard = guardKind{name: "config.xml", script: configGuardScript, path: StateDir + "/config-guard.sh",
		state: StateDir + "/config-guard", pidStem: "/var/run/arbo-config-guard", restores: "the previous configuration"}
)

// guard is one armed guard.
type guard struct {
	kind  guardKind
	token string
	secs  int
	// arg is what it restores: the argument given, or the one inherited
	// from a stale guard it took over.
	arg string
}

// armGuard arms kind's guard before a firewall change, with arg computed
// (again) after any wait for a stale guard: while one acts, pf's state or
// config.xml changes under arbo.
func (a *applier) armGuard(kind guardKind, arg func() (string, error)) (*guard, error) {
	if err := a.t.MkdirAll(StateDir, 0o700); err != nil {
		return nil, err
	}
	if err := a.t.WriteFileAtomic(kind.path, []byte(kind.script), 0o700, 0, 0); err != nil {
		return nil, err
	}
	var tok [8]byte
	if _, err := rand.Read(tok[:]); err != nil {
		return nil, err
	}
	g := &guard{kind: kind, token: hex.EncodeToString(tok[:]), secs: int(a.env.ConfirmTimeout / time.Second)}
	if g.secs < 1 {
		g.secs = 60
	}
	for attempt := 0; ; attempt++ {
		v, err := arg()
		if err != nil {
			return nil, err
		}
		if err := a.ctx.Err(); err != nil {
			return nil, fmt.Errorf("interrupted before arming the %s guard: %w", kind.name, err)
		}
		r, err := a.t.Run(a.ctx, []string{"/bin/sh", kind.path, "arm", kind.state, g.token, strconv.Itoa(g.secs), v, kind.pidStem + "." + g.token + ".pid"}, remote.RunOpts{})
		if err != nil {
			return nil, err
		}
		out := strings.TrimSpace(string(r.Stdout))
		switch {
		case r.Exit == 0 && strings.HasPrefix(out, "armed "):
			g.arg = strings.TrimPrefix(out, "armed ")
			return g, nil
		case r.Exit == 75 && attempt < 3:
			// A stale guard acts within the margin: let it finish.
			n, _ := strconv.Atoi(strings.TrimPrefix(out, "wait "))
			n = min(max(n, 1), g.secs+guardMargin+3)
			a.progress(fmt.Sprintf("waiting %d s for the %s guard of an unconfirmed earlier run to act", n, kind.name))
			select {
			case <-time.After(time.Duration(n) * time.Second):
			case <-a.ctx.Done():
				return nil, fmt.Errorf("interrupted while waiting for an earlier %s guard: %w", kind.name, a.ctx.Err())
			}
		default:
			return nil, fmt.Errorf("arming the %s rollback guard (nothing was changed): exit %d: %s%s", kind.name, r.Exit, out, strings.TrimSpace(string(r.Stderr)))
		}
	}
}

// settle confirms g (the change is proven) or stands it down (the change
// is gone already). A confirmation the guard can no longer take (it acted,
// or is about to) is an error: the change is being rolled back.
func (a *applier) settle(g *guard, confirm bool) error {
	verb := "confirm"
	if !confirm {
		verb = "standdown"
	}
	r, err := a.t.Run(context.WithoutCancel(a.ctx), []string{"/bin/sh", g.kind.path, verb, g.kind.state, g.token}, remote.RunOpts{})
	if err != nil {
		return err
	}
	switch r.Exit {
	case 0:
		return nil
	case 3, 4:
		return fmt.Errorf("the confirmation came too late (%s): the on-box timer restores %s after %d s", strings.TrimSpace(string(r.Stdout)), g.kind.restores, g.secs)
	}
	return fmt.Errorf("%s the %s guard: exit %d: %s", verb, g.kind.name, r.Exit, strings.TrimSpace(string(r.Stderr)))
}

func (a *applier) progress(s string) {
	if a.env.Progress != nil {
		a.env.Progress(a.name, s)
	}
}
