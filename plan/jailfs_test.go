package plan

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/arbo-project/arbo/state"
)

// TestJailView: paths inside jail roots go through the roots' views, the
// rest is the machine's own; a write into a root without a view is refused,
// never made through the real path.
func TestJailView(t *testing.T) {
	m := newMem()
	m.files["/usr/jails/app1/etc/passwd"] = memFile{content: []byte("root:*:0:0::/root:/bin/sh\n"), mode: 0o644}
	d := &state.Machine{Name: "h", Jails: []state.Jail{{Name: "app1", Root: "/usr/jails/app1"}, {Name: "new1", Root: "/usr/jails/new1"}}}
	v, err := openViews(context.Background(), m, d)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p, want string
		write   bool
		err     error
	}{
		{p: "/usr/jails/app1/etc/resolv.conf", want: "/var/db/arbo/jailfs/app1/etc/resolv.conf"},
		{p: "/usr/jails/app1", want: "/var/db/arbo/jailfs/app1"},
		{p: "/usr/jails/app10/etc/x", want: "/usr/jails/app10/etc/x"},                   // another jail's name prefix
		{p: "/etc/pf.conf", want: "/etc/pf.conf", write: true},                          // host files are the host's
		{p: "/usr/jails/new1/etc/resolv.conf", want: "/usr/jails/new1/etc/resolv.conf"}, // read: nothing there yet
		{p: "/usr/jails/new1/etc/resolv.conf", write: true, err: errNoView},
	}
	for _, tt := range tests {
		got, err := v.resolve(tt.p, tt.write)
		if !errors.Is(err, tt.err) || got != tt.want {
			t.Errorf("resolve(%s, write %v) = %q, %v; want %q, %v", tt.p, tt.write, got, err, tt.want, tt.err)
		}
	}
	if err := v.WriteFileAtomic("/usr/jails/new1/etc/resolv.conf", []byte("x"), 0o644, 0, 0); !errors.Is(err, errNoView) {
		t.Errorf("write into a root without a view: %v", err)
	}
	if _, ok := m.files["/usr/jails/new1/etc/resolv.conf"]; ok {
		t.Error("the write went through the real path")
	}
	// Once the root exists, its view is mounted and the write goes through it.
	m.dirs["/usr/jails/new1"] = true
	if err := v.mount(context.Background(), []string{"/usr/jails/new1"}); err != nil {
		t.Fatal(err)
	}
	if err := v.WriteFileAtomic("/usr/jails/new1/etc/resolv.conf", []byte("x"), 0o644, 0, 0); err != nil {
		t.Fatal(err)
	}
	if got, err := v.ReadFiles(context.Background(), []string{"/usr/jails/app1/etc/passwd", "/usr/jails/new1/etc/resolv.conf"}); err != nil || len(got) != 2 {
		t.Errorf("ReadFiles through the views = %v, %v", got, err)
	}
	err = v.unmap(errors.New("write /var/db/arbo/jailfs/app1/etc/x: permission denied"))
	if !strings.Contains(err.Error(), "write /usr/jails/app1/etc/x: permission denied (through the no-symlink view /var/db/arbo/jailfs/app1") {
		t.Errorf("unmap: %v", err)
	}
	if err := v.close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(m.mounts) != 0 {
		t.Errorf("views left mounted: %v", m.mounts)
	}
}
