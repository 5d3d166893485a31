//go:build linux

// Command arbo-lab starts and stops the lab: FreeBSD-looking machines behind
// real OpenSSH servers on this Linux box (docs/lab.md), and injects faults
// into them.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/arbo-project/arbo/internal/lab"
	"github.com/arbo-project/arbo/inventory"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "arbo-lab:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "arbo-lab",
		Short:         "Run FreeBSD-looking machines behind real OpenSSH, to try arbo without FreeBSD",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUp(), newDown(), newProxy(), newFault())
	return root
}

func requireDir(dir string) error {
	if dir == "" {
		return errors.New("--dir is required")
	}
	return nil
}

func newUp() *cobra.Command {
	var o lab.Options
	cmd := &cobra.Command{
		Use:   "up TOPOLOGY --dir DIR",
		Short: "Start one machine for the gateway and one per host of the topology",
		Long: `Start one machine for the gateway and one per host of the topology, and write
in DIR: id_ed25519 (the key the machines accept for root), ssh_config (one Host
entry per machine, by its ssh.address), known_hosts and machines.

  arbo apply --ssh-config DIR/ssh_config TOPOLOGY`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireDir(o.Dir); err != nil {
				return err
			}
			c, err := inventory.Load(args[0])
			if err != nil {
				return err
			}
			// The hosts run the upstream code (as in every test's lab) when
			// the upstream folder is given or found beside the module;
			// without one they run the emulator's ezjail-admin and service.
			if o.Upstream == "" {
				o.Upstream, _ = lab.FindUpstream(".")
			}
			if o.Upstream == "" && o.RealCode {
				if cmd.Flags().Changed("real") {
					return fmt.Errorf("--real needs the upstream folder: give --upstream DIR (or set %s)", lab.UpstreamEnv)
				}
				o.RealCode = false
				fmt.Fprintf(cmd.ErrOrStderr(), "arbo-lab: no upstream folder (--upstream, $%s): the hosts run the emulator's ezjail-admin and service\n", lab.UpstreamEnv)
			}
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find own binary for the proxy process: %w", err)
			}
			o.ProxyExec = []string{self, "proxy"}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			l, err := lab.Up(ctx, c, o)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, m := range l.Machines() {
				fmt.Fprintf(out, "machine %-12s %-22s root %s\n", m.Name, m.Addr, m.Root)
			}
			fmt.Fprintf(out, "ssh -F %s ADDRESS    # as arbo will; `arbo-lab down --dir %s` when done\n", l.SSHConfig(), l.Dir())
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Dir, "dir", "", "directory for the key, ssh_config, known_hosts and the lab's state (required)")
	cmd.Flags().StringVar(&o.Base, "base", lab.DefaultBase, "root-owned directory that holds the machine roots")
	cmd.Flags().StringVar(&o.EmuBinary, "emu", "", "prebuilt lab-emu binary (default: build it with the go command)")
	cmd.Flags().BoolVar(&o.Basejail, "basejail", false, "pre-install ezjail's basejail on the hosts (as --bootstrap would)")
	cmd.Flags().StringVar(&o.Upstream, "upstream", "", "upstream folder (shared fixtures/upstream; default: ../shared/fixtures/upstream beside the module, or $"+lab.UpstreamEnv+"): check its sha256 pins, refuse on a mismatch, and install FreeBSD's rc framework on the hosts")
	cmd.Flags().DurationVar(&o.Delay, "delay", 0, "add this one-way delay in each direction to every connection to the machines, as a WAN would (e.g. 25ms; for benchmarks)")
	cmd.Flags().BoolVar(&o.RealCode, "real", true, "run ezjail-admin, service and the rc scripts from the upstream folder on the hosts, root's shell /bin/sh; --real=false for the emulator's")
	return cmd
}

func newDown() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "down --dir DIR",
		Short: "Stop every process of the lab and remove its machine roots (safe to repeat)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireDir(dir); err != nil {
				return err
			}
			return lab.DownDir(dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the lab's directory, as given to up (required)")
	return cmd
}

func newProxy() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    "proxy --dir DIR",
		Short:  "Serve the machines' proxies (started by up; not for direct use)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return lab.ServeProxies(dir)
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the lab's directory")
	return cmd
}

// fault is one fault subcommand: n arguments before MACHINE (min..max).
type fault struct {
	use, short string
	min, max   int
	run        func(m *lab.Machine, args []string) error
}

func newFault() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "fault KIND [ARGS] --dir DIR MACHINE",
		Short: "Inject a fault into a running lab's machine",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return fmt.Errorf("unknown fault %q (see arbo-lab fault --help)", args[0])
		},
	}
	cmd.PersistentFlags().StringVar(&dir, "dir", "", "the lab's directory, as given to up (required)")
	faults := []fault{
		{"cut", "Cut the machine's current connections now", 0, 0,
			func(m *lab.Machine, _ []string) error { return m.CutConnections() }},
		{"cut-after N", "Cut the machine's connections after N more bytes from clients", 1, 1,
			func(m *lab.Machine, a []string) error {
				n, err := parseSize(a[0])
				if err != nil {
					return err
				}
				return m.CutAfterBytes(n)
			}},
		{"stop-sshd", "Stop the machine's sshd (open sessions go on)", 0, 0,
			func(m *lab.Machine, _ []string) error { return m.StopSSHD() }},
		{"start-sshd", "Start the machine's sshd again", 0, 0,
			func(m *lab.Machine, _ []string) error { return m.StartSSHD() }},
		{"rekey", "Give the machine a new host key (known_hosts keeps the old one)", 0, 0,
			func(m *lab.Machine, _ []string) error { return m.ChangeHostKey() }},
		{"fail CMD [MSG]", "Make an emulated command fail with MSG until clear-fail", 1, 2,
			func(m *lab.Machine, a []string) error {
				msg := "lab: " + a[0] + " failed (fault injected)"
				if len(a) == 2 {
					msg = a[1]
				}
				return m.FailCommand(a[0], msg)
			}},
		{"clear-fail CMD", "Let an emulated command work again", 1, 1,
			func(m *lab.Machine, a []string) error { return m.ClearFail(a[0]) }},
		{"reject-next-config", "Make the gateway's loader reject the next config.xml", 0, 0,
			func(m *lab.Machine, _ []string) error { return m.RejectNextConfig() }},
		{"reject-next-ruleset", "Make pfctl refuse the next ruleset it loads (on the gateway: the one pfSense generates)", 0, 0,
			func(m *lab.Machine, _ []string) error { return m.RejectNextRuleset() }},
		{"firewall open|blocked", "Set whether the machine's firewall lets new SSH connections in", 1, 1,
			func(m *lab.Machine, a []string) error {
				switch a[0] {
				case "open":
					return m.SetFirewall(false)
				case "blocked":
					return m.SetFirewall(true)
				}
				return fmt.Errorf("firewall: want open or blocked, not %q", a[0])
			}},
		{"fill-disk PATH SIZE", "Mount a SIZE-byte file system at PATH in the machine, full", 2, 2,
			func(m *lab.Machine, a []string) error {
				n, err := parseSize(a[1])
				if err != nil {
					return err
				}
				return m.FillDisk(a[0], n)
			}},
	}
	for _, f := range faults {
		name, rest, _ := strings.Cut(f.use, " ")
		use := name
		if rest != "" {
			use += " " + rest
		}
		cmd.AddCommand(&cobra.Command{
			Use:   use + " --dir DIR MACHINE",
			Short: f.short,
			Args:  cobra.RangeArgs(f.min+1, f.max+1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if err := requireDir(dir); err != nil {
					return err
				}
				l, err := lab.Open(dir)
				if err != nil {
					return err
				}
				machine := args[len(args)-1]
				m := l.Machine(machine)
				if m == nil {
					return fmt.Errorf("no machine %q in the lab in %s", machine, dir)
				}
				return f.run(m, args[:len(args)-1])
			},
		})
	}
	return cmd
}

// parseSize reads a byte count with an optional k, M or G suffix (powers of
// 1024).
func parseSize(s string) (int64, error) {
	mult := int64(1)
	t := strings.TrimSuffix(strings.TrimSuffix(s, "B"), "i")
	switch {
	case strings.HasSuffix(t, "k"), strings.HasSuffix(t, "K"):
		mult, t = 1<<10, t[:len(t)-1]
	case strings.HasSuffix(t, "M"):
		mult, t = 1<<20, t[:len(t)-1]
	case strings.HasSuffix(t, "G"):
		mult, t = 1<<30, t[:len(t)-1]
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad size %q (want bytes, or a number with k, M or G)", s)
	}
	return n * mult, nil
}
