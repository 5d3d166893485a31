package emu

import (
	"testing"
)

func TestSysrc(t *testing.T) {
	tests := []struct {
		name      string
		rcconf    string
		local     string
		args      []string
		code      int
		out       string
		wantConf  string // "" = don't check
		wantLocal string
	}{
		{name: "read", rcconf: "pf_enable=\"YES\"\n", args: []string{"pf_enable"}, out: "pf_enable: YES\n"},
		{name: "read -n, local wins", rcconf: "hostname=a\n", local: "hostname='b'\n", args: []string{"-n", "hostname"}, out: "b\n"},
		{name: "read unknown", args: []string{"nosuch"}, code: 1},
		{name: "check query set", rcconf: "x=\"\"\n", args: []string{"-c", "x"}, code: 0},
		{name: "check query unset", args: []string{"-c", "x"}, code: 1},
		{name: "check needs change", rcconf: "pf_enable=\"NO\"\n", args: []string{"-c", "pf_enable=YES"}, code: 1, wantConf: "pf_enable=\"NO\"\n"},
		{name: "check no change", rcconf: "pf_enable=\"YES\"\n", args: []string{"-c", "pf_enable=YES"}, code: 0},
		{name: "check unset var needs change", args: []string{"-c", "pf_enable=YES"}, code: 1},
		{name: "write appends to rc.conf", rcconf: "# c\n", args: []string{"pf_enable=YES"}, out: "pf_enable:  -> YES\n", wantConf: "# c\npf_enable=\"YES\"\n"},
		{name: "write replaces last occurrence", rcconf: "a=1\n#x\na=2\nb=3\n", args: []string{"a=9"}, out: "a: 2 -> 9\n", wantConf: "a=1\n#x\na=\"9\"\nb=3\n"},
		{name: "write goes to last file having it", rcconf: "a=1\n", local: "a=2\n", args: []string{"a=3"}, wantConf: "a=1\n", wantLocal: "a=\"3\"\n"},
		{name: "-f file", rcconf: "a=1\n", args: []string{"-f", "/etc/rc.conf.local", "a=5"}, out: "a:  -> 5\n", wantConf: "a=1\n", wantLocal: "a=\"5\"\n"},
		{name: "-f -c reads only that file", rcconf: "a=5\n", args: []string{"-f", "/etc/rc.conf.local", "-c", "a=5"}, code: 1},
		{name: "+= appends without duplicates", rcconf: "cloned_interfaces=\"lo1\"\n", args: []string{"cloned_interfaces+=lo1 lo2"}, wantConf: "cloned_interfaces=\"lo1 lo2\"\n"},
		{name: "+= on unset", args: []string{"cloned_interfaces+=lo1"}, wantConf: "cloned_interfaces=\"lo1\"\n"},
		{name: "-c += already there", rcconf: "cloned_interfaces=\"lo1 lo2\"\n", args: []string{"-c", "cloned_interfaces+=lo2"}, code: 0},
		{name: "-= removes", rcconf: "l=\"a b c\"\n", args: []string{"l-=b"}, wantConf: "l=\"a c\"\n"},
		{name: "-x removes everywhere", rcconf: "a=1\nb=2\na=3\n", local: "a=4\n", args: []string{"-x", "a"}, wantConf: "b=2\n", wantLocal: "\n"},
		{name: "-e", rcconf: "a=1\n", args: []string{"-e", "a"}, out: "a=\"1\"\n"},
		{name: "bad name", args: []string{"1a=b"}, code: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := newLab(t, "")
			if tt.rcconf != "" {
				l.write("/etc/rc.conf", tt.rcconf)
			}
			if tt.local != "" {
				l.write("/etc/rc.conf.local", tt.local)
			}
			code, out, errs := l.run(append([]string{"sysrc"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, errs)
			}
			if tt.out != "" && out != tt.out {
				t.Errorf("stdout %q, want %q", out, tt.out)
			}
			if tt.wantConf != "" {
				if got := l.read("/etc/rc.conf"); got != tt.wantConf {
					t.Errorf("rc.conf = %q, want %q", got, tt.wantConf)
				}
			}
			if tt.wantLocal != "" {
				if got := l.read("/etc/rc.conf.local"); got != tt.wantLocal {
					t.Errorf("rc.conf.local = %q, want %q", got, tt.wantLocal)
				}
			}
		})
	}
}

func TestSysrcInJailRoot(t *testing.T) {
	l := newLab(t, "")
	l.must("sysrc", "-R", "/usr/jails/web", "sshd_enable=YES")
	if got := l.read("/usr/jails/web/etc/rc.conf"); got != "sshd_enable=\"YES\"\n" {
		t.Errorf("jail rc.conf = %q", got)
	}
}
