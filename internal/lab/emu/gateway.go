package emu

import (
	"fmt"
)

func init() {
	commands["pgrep"] = pgrepCmd
}

// pgrepCmd: pgrep [-LSafilnoqvx] [-F pidfile] … pattern (FreeBSD pgrep(1)).
// pfSense's login shell /etc/rc.initial asks `pgrep -qf 'rc.local$'`
// (rc.initial:34) before starting /etc/rc.local, and busybox's pgrep has
// no -q. A lab machine is a chroot without its own process table (no
// /proc inside), so no process matches: exit 1 ("No processes were
// matched", pgrep(1) EXIT STATUS), and -q prints nothing either way.
// Approximation: a running rc.local is never found, so every login starts
// it again.
func pgrepCmd(e *env, args []string) int {
	opts, rest, err := getopts(args[1:], "LSafilnoqvxF:G:M:N:P:U:c:d:g:j:s:t:u:")
	if err != nil {
		fmt.Fprintf(e.stderr, "pgrep: %v\n", err)
		return 2
	}
	o := optMap(opts)
	_, byJail := o["j"]
	if len(rest) == 0 && !byJail {
		fmt.Fprintln(e.stderr, "usage: pgrep [-LSfilnoqvx] [-d delim] [-F pidfile] [-G gid] [-M core] [-N system] [-P ppid] [-U uid] [-c class] [-g group] [-j jail] [-s sid] [-t tty] [-u euid] pattern ...")
		return 2
	}
	return 1
}
