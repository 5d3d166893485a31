//go:build linux

package lab

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/arbo-project/arbo/internal/lab/emu"
)

// UpstreamEnv names the environment variable that points tests and
// arbo-lab at the upstream folder (fixtures/upstream of the shared folder)
// when it is not at ../shared/fixtures/upstream beside the module.
const UpstreamEnv = "ARBO_LAB_UPSTREAM"

// upstreamFile is one file of the shared upstream folder (its README, and
// freebsd/SOURCE.md for provenance) and where a FreeBSD host has it.
type upstreamFile struct {
	src    string // relative to the upstream folder
	sha256 string // of the bytes in the upstream folder, pinned
	dst    string // FreeBSD path on a host
	mode   os.FileMode
	// install is the one transform the file's own installer applies, or
	// nil: the file is installed unchanged.
	install func([]byte) []byte
}

// ezjailPrefix is the install-time substitution of ezjail's Makefile
// (ezjail-3.4.2/Makefile, install target: `sed s:EZJAIL_PREFIX:${PREFIX}:
// ezjail-admin > ${DST}/bin/ezjail-admin`, the same for ezjail.sh into
// etc/rc.d/ezjail), with the ports' PREFIX=/usr/local.
func ezjailPrefix(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("EZJAIL_PREFIX"), []byte("/usr/local"))
}

// portsPrefix is the ports framework's SUB_FILES substitution of an rc
// script template (ports Mk/bsd.port.mk, USE_RC_SUBR: %%PREFIX%% becomes
// ${PREFIX}, /usr/local): how files/unbound.in becomes the installed
// /usr/local/etc/rc.d/unbound.
func portsPrefix(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("%%PREFIX%%"), []byte("/usr/local"))
}

// hostUpstream is what every lab host gets from the upstream folder. The
// sha256 values are those of freebsd/SOURCE.md and of the ezjail 3.4.2
// release (tag RELEASE_3_4_2).
var hostUpstream = []upstreamFile{
	{"freebsd/libexec/rc/rc.subr", "eebebc3fd38d1a874d411ad07c146f32fcad65e2bc96237b421a8d34cbb4c827", "/etc/rc.subr", 0o644, nil},
	{"freebsd/libexec/rc/rc.conf", "5c5fadc2609e36f40f84149f5adc4b40051d33c546eb6c1d8f422b9902dde620", "/etc/defaults/rc.conf", 0o644, nil},
	{"freebsd/libexec/rc/network.subr", "7071b4edc3b0ea280ee0ae4726b9fbf076341c866fc21044d1a27aa2d196a48f", "/etc/network.subr", 0o644, nil},
	{"freebsd/libexec/rc/rc.d/pf", "d8a174fc08e0e2e19719dadd1dc8f18b4be5cc5d73de789689f513b691f14ea5", "/etc/rc.d/pf", 0o755, nil},
	{"freebsd/libexec/rc/rc.d/pflog", "e2805f9e529935780c657e2190d4348ab6f0a21a55d9957387b3e93f81ebc9fa", "/etc/rc.d/pflog", 0o755, nil},
	{"freebsd/libexec/rc/rc.d/jail", "8e19d146cd5155fe08b6bd71861421d62842e5ab4615341804697a3bbc097943", "/etc/rc.d/jail", 0o755, nil},
	{"freebsd/libexec/rc/rc.d/netif", "d3593045f5a60d8a3414eabc988cbd630827a2a3d94ab530be2d9dad8f889384", "/etc/rc.d/netif", 0o755, nil},
	{"freebsd/libexec/rc/rc.d/routing", "912a0851f01075c18e3694ef1392a1e1517a70fa371e12f65d736b6d84e711c5", "/etc/rc.d/routing", 0o755, nil},
	{"freebsd/libexec/rc/rc.d/local_unbound", "ade046c5629536d514d5429fa3e906a5d93fd84c498e7765685fe504b07217e9", "/etc/rc.d/local_unbound", 0o755, nil},
	{"freebsd/usr.sbin/service/service.sh", "b8da01b2abbcd6a3dafb0a12c7ad386f26a83e9bd6af4ef88c770234563c5fab", "/usr/sbin/service", 0o755, nil},
	{"ezjail-3.4.2/ezjail-admin", "d2823ac6ce38ce345c29c2a9662dc4132357f26c4927068f97473fbb244293c4", "/usr/local/bin/ezjail-admin", 0o755, ezjailPrefix},
	{"ezjail-3.4.2/ezjail.sh", "b7ffef4fe4cff2323b0c06f0391d4144de1f1d7469fb511007ae299b504de953", "/usr/local/etc/rc.d/ezjail", 0o755, ezjailPrefix},
	// ezjail's Makefile: cp -R examples/example ${PREFIX}/share/examples/ezjail/
	// (install copies it into flavours/example, ezjail-admin:290).
	{"ezjail-3.4.2/examples/example/etc/rc.d/ezjail.flavour.example", "7a1c84bfaa7848732815215d4661b23d898e68165660d9280314b4f2b683508d", "/usr/local/share/examples/ezjail/example/etc/rc.d/ezjail.flavour.example", 0o755, nil},
	{"ezjail-3.4.2/examples/example/etc/make.conf", "64cb4f89274bbeb3c7ade768863d8c288d35098ac7ed5d2a050af1d114d5cbc3", "/usr/local/share/examples/ezjail/example/etc/make.conf", 0o644, nil},
	{"ezjail-3.4.2/examples/example/etc/periodic.conf", "59ab683f26d582a350faa2773923612bc3db6b81fb93d2b9183e4367188216b1", "/usr/local/share/examples/ezjail/example/etc/periodic.conf", 0o644, nil},
	{"ezjail-3.4.2/examples/example/etc/rc.conf", "abb79e30932f9dd3e736f278a874bd95ca230b4f7d479592151db8b5012ed2bd", "/usr/local/share/examples/ezjail/example/etc/rc.conf", 0o644, nil},
	{"ezjail-3.4.2/examples/example/usr/local/etc/sudoers", "2267a57752d6456428e323bfca3359d9a56ced659cd3470177c31e96dab8d24b", "/usr/local/share/examples/ezjail/example/usr/local/etc/sudoers", 0o440, nil},
	{"freebsd-ports/dns/unbound/files/unbound.in", "292ebaf657db2f657eb6ab60f2b288a27a2fa89cab10062f6829d5b242566c7a", emu.UnboundRCStage, 0o755, portsPrefix},
}

// emulatedPaths are the host paths that the emulator still answers for
// unless the real code is switched on (Options.RealCode): installing the
// upstream file there would replace the emulator's link.
var emulatedPaths = map[string]bool{
	"/usr/sbin/service":           true,
	"/usr/local/bin/ezjail-admin": true,
	"/usr/local/etc/rc.d/ezjail":  true,
}

// FindUpstream returns the upstream folder: $ARBO_LAB_UPSTREAM, else
// ../shared/fixtures/upstream beside the directory holding go.mod, searched
// upwards from dir. It returns "" and the reason when there is none.
func FindUpstream(dir string) (string, string) {
	if d := os.Getenv(UpstreamEnv); d != "" {
		return d, ""
	}
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", err.Error()
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			up := filepath.Join(d, "..", "shared", "fixtures", "upstream")
			if fi, err := os.Stat(up); err == nil && fi.IsDir() {
				return filepath.Clean(up), ""
			}
			return "", fmt.Sprintf("no upstream folder at %s (set %s)", filepath.Clean(up), UpstreamEnv)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Sprintf("no go.mod above %s to find ../shared/fixtures/upstream from (set %s)", dir, UpstreamEnv)
		}
		d = parent
	}
}

// UpstreamFiles reads the pinned upstream files of a host from dir, checks
// each one's sha256 and returns them at their FreeBSD paths, transformed
// only by their own installer's substitution. A missing file or a differing
// hash is an error naming the file: the lab must never run altered code.
func UpstreamFiles(dir string) ([]File, error) {
	if dir == "" {
		return nil, errors.New("upstream: no folder given")
	}
	var out []File
	for _, u := range hostUpstream {
		p := filepath.Join(dir, filepath.FromSlash(u.src))
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("upstream: %w (the upstream folder must hold fixtures/upstream as its README describes)", err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != u.sha256 {
			return nil, fmt.Errorf("upstream: %s has sha256 %s, want %s: refusing to run a changed copy (restore it from %s)", p, got, u.sha256, "the commit in its README")
		}
		if u.install != nil {
			b = u.install(b)
		}
		out = append(out, File{Path: u.dst, Content: b, Mode: u.mode})
	}
	return out, nil
}
