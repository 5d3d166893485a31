// Package emu is the lab's emulator of the FreeBSD and pfSense commands that
// arbo runs on its machines (see /work/shared/LAB.md, "How one machine is
// built", step 3). It is one multi-call binary, like busybox: Main dispatches
// on the base name of argv[0]. The machine builder links the binary under the
// paths listed in Links (and GatewayLinks on the gateway).
//
// All state lives in files inside the machine root, so that tests and the
// lab's proxy can read it; the exported constants below are the contract
// with the machine/proxy side (package lab).
//
// The package is portable Go without cgo: the binary is built with
// CGO_ENABLED=0 and runs inside a chroot that has no C library.
package emu

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// State-file contract (paths inside the machine root).
const (
	// MachineFile is written by the machine builder. Lines:
	//   name=<machine>
	//   kind=host|gateway
	//   release=14.2-RELEASE
	//   iface=<name> <addr>/<prefix>     (zero or more; interfaces present at boot, lo0 is implicit)
	MachineFile = "/etc/lab-machine"
	// StateDir holds the emulator's runtime state.
	StateDir = "/var/run/lab"
	// FirewallFile holds "open" or "blocked" (see firewallVerdict).
	FirewallFile = "/var/run/lab/firewall"
	// FlushFile holds an integer, incremented whenever pf states are flushed.
	FlushFile = "/var/run/lab/flush"
	// FailDir holds fault switches: FailDir/<command> makes that command fail.
	FailDir = "/var/run/lab/fail"
	// FailConfigLoad is the fault that makes the gateway loader reject the
	// next config.xml it loads (the file is then removed).
	FailConfigLoad = "/var/run/lab/fail/config-load"
	// FailRulesLoad makes the next `pfctl -f` of a main ruleset refuse its
	// file as pfctl refuses a syntax error (the file is then removed): on
	// the pfSense gateway, a ruleset pfSense generates and pfctl rejects.
	FailRulesLoad = "/var/run/lab/fail/rules-load"
	// CallsLog gets one JSON line per emulated call.
	CallsLog = "/var/log/lab-calls.log"
	// PFLoadedFile is the ruleset last loaded with pfctl -f.
	PFLoadedFile = "/var/run/lab/pf.loaded"
	// PFRulesFile holds the loaded statements, macros expanded and includes
	// inlined, one per line: what pfctl -sr prints and the firewall verdict
	// is computed from.
	PFRulesFile = "/var/run/lab/pf.rules"
	// PFEnabledFile exists (content "1") while pf is enabled.
	PFEnabledFile = "/var/run/lab/pf.enabled"
	// InterfacesFile lists interfaces, one per line: "<name> [addr/prefix…]".
	InterfacesFile = "/var/run/lab/interfaces"
	// RoutesFile lists static routes, one per line: "<dest> <gateway>".
	RoutesFile = "/var/run/lab/routes"
	// ConfigLoadedFile records the config.xml the gateway loader last accepted.
	ConfigLoadedFile = "/var/run/lab/config.loaded"
	// ServicesLog gets one line per service action the emulator performed.
	ServicesLog = "/var/run/lab/services.log"
	// RootEnv names the environment variable that prefixes every path (tests).
	RootEnv = "LAB_ROOT"
	// LogRootEnv names the environment variable for the root of the machine
	// whose call log and machine-wide state (interfaces, pf, running jails)
	// a call uses; it defaults to LAB_ROOT. jexec sets LAB_ROOT to the jail
	// root and keeps this one at the machine root.
	LogRootEnv = "LAB_LOG_ROOT"
	// JailEnv names the environment variable carrying the current jail name
	// (set by jexec), so that the call log can record it.
	JailEnv = "LAB_JAIL"
)

// Links maps each emulated command to the absolute FreeBSD paths where the
// machine builder links the binary on every machine.
var Links = map[string][]string{
	"ezjail-admin":    {"/usr/local/bin/ezjail-admin"},
	"jls":             {"/usr/sbin/jls"},
	"jail":            {"/usr/sbin/jail"},
	"jexec":           {"/usr/sbin/jexec"},
	"pfctl":           {"/sbin/pfctl"},
	"sysrc":           {"/usr/sbin/sysrc"},
	"service":         {"/usr/sbin/service"},
	"pkg":             {"/usr/local/sbin/pkg", "/usr/sbin/pkg"},
	"route":           {"/sbin/route"},
	"ifconfig":        {"/sbin/ifconfig"},
	"netstat":         {"/usr/bin/netstat"},
	"sha256":          {"/sbin/sha256"},
	"daemon":          {"/usr/sbin/daemon"},
	"logger":          {"/usr/bin/logger"},
	"kldload":         {"/sbin/kldload"},
	"freebsd-version": {"/bin/freebsd-version"},
	"uname":           {"/usr/bin/uname"},
	"hostname":        {"/bin/hostname"},
	"zfs":             {"/sbin/zfs"},
	"zpool":           {"/sbin/zpool"},
}

// GatewayLinks are linked only on the pfSense gateway, in addition to Links.
var GatewayLinks = map[string][]string{
	"rc.filter_configure_sync": {"/etc/rc.filter_configure_sync"},
	"pfSsh.php":                {"/usr/local/sbin/pfSsh.php"},
}

// PfSenseLinks are linked on the gateway that runs pfSense's own PHP
// (lab.WithPfSense), instead of GatewayLinks.
var PfSenseLinks = map[string][]string{
	"pgrep": {"/bin/pgrep"},
}

// Main runs the command named by filepath.Base(args[0]) and returns its exit
// status. A binary called by another name (e.g. lab-emu) takes the command
// name from args[1], so that "lab-emu pfctl -sr" works without a link.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return 2
	}
	name := filepath.Base(args[0])
	if len(args) > 2 && args[1] == NotFoundFlag {
		return notFound(args[2:], stderr)
	}
	if _, ok := lookup(name); !ok && len(args) > 1 {
		args = args[1:]
		name = filepath.Base(args[0])
	}
	e := newEnv(stdin, stdout, stderr)
	return e.run(name, args)
}

// Path maps an absolute machine path to the host path: every file the
// emulator reads or writes goes through it. Inside a machine LAB_ROOT is
// unset and "/" is the machine root (chroot); tests set LAB_ROOT to a temp dir.
func Path(root, p string) string {
	if root == "" || root == "/" {
		return p
	}
	return filepath.Join(root, strings.TrimPrefix(p, "/"))
}

func rootFromEnv() string { return os.Getenv(RootEnv) }

// NotFoundFlag makes lab-emu record a command the shell could not find
// (`lab-emu --not-found NAME ARGS…`): the login shell's environment
// defines bash's command_not_found_handle to call it (NotFoundHandler), so
// that a script calling a command the lab does not provide fails with
// status 127, as on FreeBSD, and the call log shows it.
const NotFoundFlag = "--not-found"

// NotFoundHandler is the environment entry that defines bash's
// command_not_found_handle for every shell of a session (bash imports
// functions exported this way, also in POSIX mode).
const NotFoundHandler = "BASH_FUNC_command_not_found_handle%%=() { " + "/usr/local/libexec/lab-emu " + NotFoundFlag + ` "$@"; }`

// SetvarFunction is FreeBSD sh's builtin setvar (sh(1): "setvar variable
// value: Assigns the specified value to the specified variable"), which
// bash lacks and network.subr uses (clone_up: `setvar _if …`), defined for
// every shell of a session as bash imports exported functions.
const SetvarFunction = `BASH_FUNC_setvar%%=() { eval "$1=\"\$2\""; }`

// ShellEnv is what the login shell adds to a session's environment: the
// not-found handler and the FreeBSD sh builtins bash lacks. The env(1)
// stand-in keeps them through -i, as a builtin survives there on FreeBSD.
var ShellEnv = []string{NotFoundHandler, SetvarFunction}

func notFound(argv []string, stderr io.Writer) int {
	e := newEnv(nil, io.Discard, stderr)
	fmt.Fprintf(stderr, "sh: %s: not found\n", argv[0])
	e.logCall(argv, 127)
	return 127
}
