package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/arbo-project/arbo/check"
	"github.com/arbo-project/arbo/deploy"
	"github.com/arbo-project/arbo/plan"
	"github.com/arbo-project/arbo/ui"
	"github.com/arbo-project/arbo/view"
)

// runOptions are the flags plan and apply share.
type runOptions struct {
	format       string
	hosts        []string
	parallel     int
	allowDestroy bool
	allowEmpty   bool
	bootstrap    bool
	strict       bool
	templates    string
	sshConfig    string
	identity     []string
	knownHosts   string
	sshUser      string
	sshPort      int
	trustNew     bool
	confirm      time.Duration
	lockTimeout  time.Duration
	cookieFile   string
}

func (o *runOptions) addFlags(f *pflag.FlagSet) {
	f.StringVar(&o.format, "format", "text", "output format: text or json")
	f.StringArrayVar(&o.hosts, "host", nil, "only this machine (repeatable)")
	f.IntVar(&o.parallel, "parallel", 0, "machines worked on at once (default: all, up to 32)")
	f.BoolVar(&o.allowDestroy, "allow-destroy", false, "delete data-tier jails removed from the topology (after archiving them)")
	f.BoolVar(&o.allowEmpty, "allow-empty", false, "let a jail that held data move to another host and start there empty (its data does not travel yet); the old copy stays archived and retired")
	f.BoolVar(&o.bootstrap, "bootstrap", false, "install ezjail and the basejail where they are missing")
	f.BoolVar(&o.strict, "strict", false, "treat check warnings as errors")
	f.StringVar(&o.templates, "templates", "", "directory whose *.tmpl files replace the embedded templates of the same name")
	o.addSSHFlags(f)
}

// addSSHFlags adds how to reach the machines (plan, apply, check --live).
func (o *runOptions) addSSHFlags(f *pflag.FlagSet) {
	f.StringVar(&o.sshConfig, "ssh-config", "", "ssh_config file (default ~/.ssh/config)")
	f.StringArrayVarP(&o.identity, "identity-file", "i", nil, "private key for SSH (repeatable; an ssh-agent is used when present)")
	f.StringVar(&o.knownHosts, "known-hosts", "", "known_hosts file (default as OpenSSH)")
	f.StringVar(&o.sshUser, "ssh-user", "", "log in as this user on every machine (beats the topology and ssh_config)")
	f.IntVar(&o.sshPort, "ssh-port", 0, "connect to this SSH port on every machine (beats the topology and ssh_config)")
	f.StringVar(&o.cookieFile, "cookie-file", "", "read the Erlang cookie from this file instead of the topology's erlang.cookie_file (e.g. a CI credential kept outside the repository)")
	f.BoolVar(&o.trustNew, "trust-new-hosts", false, "record host keys of machines not yet in known_hosts (never replaces a changed key)")
}

func (o *runOptions) deploy(g *globalOptions) deploy.Options {
	d := deploy.Options{
		Plan:           plan.Options{AllowDestroy: o.allowDestroy, AllowEmpty: o.allowEmpty, Bootstrap: o.bootstrap, Hosts: o.hosts, CookieFile: o.cookieFile},
		TemplatesDir:   o.templates,
		Parallel:       o.parallel,
		Strict:         o.strict,
		Getenv:         g.getenv,
		Now:            time.Now,
		ConfirmTimeout: o.confirm,
		LockTimeout:    o.lockTimeout,
	}
	d.SSH.SSHConfigFile = o.sshConfig
	d.SSH.IdentityFiles = o.identity
	d.SSH.KnownHostsFile = o.knownHosts
	d.SSH.TrustNewHosts = o.trustNew
	d.SSH.User = o.sshUser
	d.SSH.Port = o.sshPort
	return d
}

type planOptions struct {
	runOptions
	offline  bool
	out      string
	detailed bool
}

func newPlanCommand(g *globalOptions) *cobra.Command {
	var o planOptions
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show exactly what would change on every machine; change nothing",
		Long: `plan reads every machine over SSH (files, jails, routes, the gateway's
config.xml), renders what the topology asks for, and prints the difference
the way Terraform does. It changes nothing.

With --offline it plans against fresh FreeBSD and pfSense machines without
connecting (no cookie file needed: secrets show as (sensitive)). With --out
it saves the plan, with digests of everything read, for "arbo apply FILE".`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd, g, o, args[0])
		},
	}
	o.addFlags(cmd.Flags())
	cmd.Flags().BoolVar(&o.offline, "offline", false, "plan against fresh machines without connecting")
	cmd.Flags().StringVar(&o.out, "out", "", "save the plan to this file, for arbo apply")
	cmd.Flags().BoolVar(&o.detailed, "detailed-exitcode", false, "exit 2 when there are changes, 0 when there are none")
	return cmd
}

func runPlan(cmd *cobra.Command, g *globalOptions, o planOptions, file string) error {
	if err := formatFlag(o.format, "text", "json"); err != nil {
		return err
	}
	d := o.deploy(g)
	d.Plan.Offline = o.offline
	pr, err := deploy.Plan(cmd.Context(), file, d)
	if err != nil {
		return err
	}
	defer deploy.Close(pr.Session)
	if pr.Report.HasErrors() || len(pr.Report.Findings) > 0 {
		writeFindings(g, pr.Report)
	}
	if o.out != "" {
		b, err := pr.Plan.Encode()
		if err != nil {
			return err
		}
		if err := writeFileAtomic(o.out, b, 0o600); err != nil {
			return err
		}
	}
	if o.format == "json" {
		err = view.PlanJSON(g.stdout, pr.Plan)
	} else {
		err = view.PlanText(g.stdout, g.style, pr.Plan)
		if err == nil && o.out != "" {
			fmt.Fprintf(g.stdout, "\nSaved the plan to %s. To apply exactly it: arbo apply %s\n", o.out, o.out)
		}
	}
	if err != nil {
		return err
	}
	code := ui.ExitOK
	if pr.Plan.HasErrors() {
		code = ui.ExitError
	} else if pr.Report.HasErrors() {
		code = ui.ExitFindings
	} else if o.detailed && pr.Plan.HasChanges() {
		code = ui.ExitChanges
	}
	if code != ui.ExitOK {
		return ui.Exit(code)
	}
	return nil
}

// writeFindings shows check findings on stderr: plan shows them, apply
// refuses on the error-level ones.
func writeFindings(g *globalOptions, r *check.Report) {
	st := check.Plain
	if g.style.On() && ui.IsTerminal(g.stderr) {
		st = check.ANSI
	}
	_ = check.WriteText(g.stderr, r, st)
	fmt.Fprintln(g.stderr)
}

// writeFileAtomic writes a local file whole or not at all.
func writeFileAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".arbo-tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return errors.Join(err, os.Remove(tmp))
	}
	return nil
}
