//go:build linux

package lab

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

// The real pfSense gateway: pfSense 2.7.2's own PHP, from the shared
// fixtures (../shared/fixtures/upstream/README.md), installed unchanged at
// its pfSense paths inside the gateway's root and run by Debian's php-cli,
// with the shim layer of gwphp/ (docs/lab-emulation.md, "Gateway").

// PfSenseEnv set to 0 makes Up build the gateway with the Go imitation of
// pfSense's reload (emu/pfsense.go) instead of pfSense's own PHP, the
// default: for `arbo-lab up` on a box without the upstream folder or
// php-cli. arbo's end-to-end tests expect the real gateway (they check the
// ruleset pf loaded) and skip, failing under CI=true, without the upstream
// folder.
const PfSenseEnv = "ARBO_LAB_PFSENSE"

// usePfSense: the real gateway unless PfSenseEnv=0 (and WithPfSense not given).
func usePfSense(o Options) bool { return o.PfSense || os.Getenv(PfSenseEnv) != "0" }

// pfSenseUpstreamEnvs name the directory holding the upstream fixtures
// (the folder of fixtures/upstream/README.md), first set wins; default:
// ../shared/fixtures/upstream beside the module root.
var pfSenseUpstreamEnvs = []string{"ARBO_LAB_UPSTREAM", "ARBO_UPSTREAM"}

// WithPfSense builds the gateway with pfSense's own PHP even when
// PfSenseEnv=0 (it is the default otherwise).
func WithPfSense() Option { return func(o *Options) { o.PfSense = true } }

//go:embed gwphp
var gwPHP embed.FS

// gwShimDir is where the shim layer lives inside the gateway.
const gwShimDir = "/usr/local/lib/lab-php"

// pfSensePins are the upstream files the gateway runs, relative to the
// upstream folder, with their sha256 (README.md of that folder: pfSense
// RELENG_2_7_2 at ec956d343e6c, PEAR Net_IPv6 at 93dc6f026917). A file
// whose sum differs is refused at Up.
var pfSensePins = []struct{ src, sum string }{
	{"pfsense-2.7.2/src/etc/inc/acb.inc", "19a6aceade6a6c1192ccb705af598aa12145b1be525d615926df5549ac490ff7"},
	{"pfsense-2.7.2/src/etc/inc/auth.inc", "6d9e391d96a4fc2df36f14498cc1fa7383132bb5bc3414c8d66a2dff66cf6c05"},
	{"pfsense-2.7.2/src/etc/inc/captiveportal.inc", "42ce53610e021387c96fbdef630c36af4426419a7983202d51e73b536d311d1f"},
	{"pfsense-2.7.2/src/etc/inc/certs.inc", "0cfa11e43fb5081a09a88ccb172e4b747d30b05fc8e23eeab738a526d1cd0aeb"},
	{"pfsense-2.7.2/src/etc/inc/config.gui.inc", "9653df38ca567cab96f0270a93cd8d0802b13830702226c1f10de2ad47ea87a6"},
	{"pfsense-2.7.2/src/etc/inc/config.inc", "3325c53f25a0e8be09a9934c3cdad464b78c94305e1dc8cfad9fe5f50f8314c1"},
	{"pfsense-2.7.2/src/etc/inc/config.lib.inc", "6d7727e6a45ebf9a70c5eb5f155b939d7ccd0d6fbdd39138ad03fbe9ec4e554d"},
	{"pfsense-2.7.2/src/etc/inc/crypt.inc", "67efa8733c81eb7371ea571ea892b78d146fd891fd4ad65e7fe71a9fa5518bd8"},
	{"pfsense-2.7.2/src/etc/inc/dyndns.class", "96c194fdd322f6e79fe669bbfacab8499f04f6147f7e25c1abf283c4f0eb2e36"},
	{"pfsense-2.7.2/src/etc/inc/filter.inc", "dcce7af227f710be7b83b2015c20bebbfada16f78b70c166ff46648ce149da79"},
	{"pfsense-2.7.2/src/etc/inc/functions.inc", "ea80842939909d07a82a039fa5abb8c2732bf5420cb88525a04173bc0c4051f8"},
	{"pfsense-2.7.2/src/etc/inc/globals.inc", "5c05c9b16b8c23de559ecae0eac4eac85cc012945bac743227452444259a15c7"},
	{"pfsense-2.7.2/src/etc/inc/gwlb.inc", "72ef4dfab6e7d9b520c64ff4972c7ac8fa26867aac7c9f53781b577598b1fe8c"},
	{"pfsense-2.7.2/src/etc/inc/interfaces.inc", "b187f926dca530ca8d378005c409f38654e008d86b36bc30be55e67009cc728d"},
	{"pfsense-2.7.2/src/etc/inc/ipsec.inc", "5b478629bf656e140e08ec76f91a9b1987a94a632fd7a04d452c7d913bb18988"},
	{"pfsense-2.7.2/src/etc/inc/itemid.inc", "b64061f6fd5379eb85f5f81538a54db6edf8baf6986bb7b9a8e5e82a82149fa0"},
	{"pfsense-2.7.2/src/etc/inc/led.inc", "a62ec99207c1747e084755d235dc9c4ccbfe9a1afd604aeb3dbbee50b9aadfc6"},
	{"pfsense-2.7.2/src/etc/inc/notices.inc", "32fc59fc922e73e71580a8b35b123a7965dc2c5902b35ce7683eb1914b9f643a"},
	{"pfsense-2.7.2/src/etc/inc/openvpn.inc", "64bc5da6b9459eff8d7e385ce8b86a118dfeb7f130fcdbcee7dd7fe8fe2bf055"},
	{"pfsense-2.7.2/src/etc/inc/pfsense-utils.inc", "59dca737eaa1b4b8045236ea9d6b20cf666563472033de4c99f9537fa80cbbcb"},
	{"pfsense-2.7.2/src/etc/inc/phpsessionmanager.inc", "6f3b9fc20e7be45fdd2b87bb369f8a17983f5ff74f8e34061f63d9277dc9f572"},
	{"pfsense-2.7.2/src/etc/inc/pkg-utils.inc", "f77123de6f53dd93d0f7cdaf5eb029664e8e7f1f83ec08a394994d5c860dffde"},
	{"pfsense-2.7.2/src/etc/inc/r53.class", "83f21310fdb75d51d7e81afe2ebb0383a024d91ad900d7f76f4ab53deb4a58cc"},
	{"pfsense-2.7.2/src/etc/inc/rrd.inc", "169c59baeaf69c174d6934743e8d8c96de7cea467ab36560e4bf3a1b0239d215"},
	{"pfsense-2.7.2/src/etc/inc/service-utils.inc", "c10292e3195ff6d002836ad176a2442c1b523f88f4519016cfbf198d7e975b2a"},
	{"pfsense-2.7.2/src/etc/inc/services.inc", "c8914dd981d5c1e44b16fa676aff08451c1f15f479d137b5631484aeaaf0cf86"},
	{"pfsense-2.7.2/src/etc/inc/shaper.inc", "bd08de862da1b1864f2de64317447cf79021747ca24269acd90a3a4eee6d202f"},
	{"pfsense-2.7.2/src/etc/inc/syslog.inc", "7bc61e96d20c3b4a5f7651be8d32e20c0260606b807ef775d4f7c83b574f9ea9"},
	{"pfsense-2.7.2/src/etc/inc/system.inc", "a3e4091e3a465cf45e54dce1d3aed1cb26b970b386e16b28cb461138217d411c"},
	{"pfsense-2.7.2/src/etc/inc/unbound.inc", "024c7af0707c510e0349f99321a3b6715ca96591693d2fda9620d1e80c7e8133"},
	{"pfsense-2.7.2/src/etc/inc/upgrade_config.inc", "9f9f95daa78c9683093e41e02b0c744578e564d7b54c6d9f93d7d092f6b54ba3"},
	{"pfsense-2.7.2/src/etc/inc/util.inc", "9f451aac712d73ad72f65a2403ac53799faa1e0926cb08ba082dffcaf5488e3a"},
	{"pfsense-2.7.2/src/etc/inc/voucher.inc", "6baeb1a029dfe12a7a1e8c9f7da005766ff36d21441ab00effff76a0af4343f9"},
	{"pfsense-2.7.2/src/etc/inc/vpn.inc", "6684626707e0266af01da43cac1e3ea79e2ad1b7fd3e670059a2c1223c0041ee"},
	{"pfsense-2.7.2/src/etc/inc/xmlparse.inc", "c8f994c2e9299b366d72da4817afe9e7c8a2f154d728cf93439c99c1e7c8320f"},
	{"pfsense-2.7.2/src/etc/inc/xmlrpc_client.inc", "9e48219ab67b159ab3a5392324f4e0e00fd71e3320555ad041d65b41edd98fc6"},
	{"pfsense-2.7.2/src/etc/phpshellsessions/svc", "959c4b30b9e0d81555a42f185d507a4417d8c7f6319b60034af0257c5c860ed7"},
	{"pfsense-2.7.2/src/etc/rc.filter_configure_sync", "f73d1fb1c0abbd2c1b5b353540d06ed3f1badac852ebfc84f356fb972f660089"},
	{"pfsense-2.7.2/src/etc/rc.filter_synchronize", "180da4d2a01b58962522fb64acedc8eeeeb2aa07a855d2f1d1aa692a235c007d"},
	{"pfsense-2.7.2/src/etc/rc.initial", "9f90a974163f3754a6c350fcab87ce353ff0079badaa9b3cb43b551c96bdd927"},
	{"pfsense-2.7.2/src/etc/rc.newwanip", "d581407301fc30ea10bd54a9ed1314c4387c40b89f84ef15e9a0d3d954c1b399"},
	{"pfsense-2.7.2/src/etc/version", "f56467edde7d110ab9406d3f199df95f2e084e23d40f57bf3c51d85c1922f256"},
	{"pfsense-2.7.2/src/usr/local/pfSense/include/www/alias-utils.inc", "2491302d141a879a27cb2554467ed1774ec0ed260d1b08394918af3db2f41bab"},
	{"pfsense-2.7.2/src/usr/local/pfSense/include/www/firewall_nat.inc", "53c3cfadbead877a6338d503a50eb4d3505e9f27540577c8cb6a805f82b6a2e1"},
	{"pfsense-2.7.2/src/usr/local/pkg/miniupnpd.inc", "7320e1dbb0b96afe226ac452845f6d40cb3f7bfda5b6ce270f659e3c26a17f82"},
	{"pfsense-2.7.2/src/usr/local/sbin/pfSsh.php", "e67fa1590cd194a96b8b27c9782cc549e5dfad3eb5fdcfda618baba028cfe2b9"},
	{"pfsense-2.7.2/src/usr/local/www/firewall_nat_edit.php", "ee1d68db1031ee1d1b5361e6b4b3d4998ba8237ab280de2caf88f94783120aca"},
	{"pfsense-2.7.2/src/usr/local/www/includes/functions.inc.php", "b3140bdbaf8527e0da577a0ba735e66bb3bf9d8b7d0acf5fa808fca849243269"},
	{"pfsense-2.7.2/src/usr/local/www/system_gateways_edit.php", "a07a633a1e82a27c24d3d86cecb0529b42b5542cf84ea5a216ff3ea36e2f1c66"},
	{"pfsense-2.7.2/src/usr/local/www/system_routes.php", "81fa579ba3d23161c24bc80af4ad0cb0e8afb25feb1c154c5f2ecb50522c740e"},
	{"pfsense-2.7.2/src/usr/local/www/xmlrpc.php", "19648e4a49812c556fd592fa4f0b7767db63bdc389f91610629dec113879f098"},
	{"pear-Net_IPv6/Net/IPv6.php", "0ab9feef441cd5cdb1bc688ce551382c942da052511a07792ecb0d1be34c28ba"},
}

// pfSenseUpstreamDir finds the upstream folder as the hosts do
// (FindUpstream), also honouring $ARBO_UPSTREAM.
func pfSenseUpstreamDir() (string, error) {
	if os.Getenv(UpstreamEnv) == "" {
		if d := os.Getenv(pfSenseUpstreamEnvs[1]); d != "" {
			return d, nil
		}
	}
	d, why := FindUpstream(".")
	if d == "" {
		return "", errors.New(why)
	}
	return d, nil
}

// PfSenseUpstream returns the upstream folder after checking every pinned
// file's sha256, or why the real gateway cannot be built.
func PfSenseUpstream() (string, error) {
	dir, err := pfSenseUpstreamDir()
	if err != nil {
		return "", err
	}
	for _, p := range pfSensePins {
		b, err := os.ReadFile(filepath.Join(dir, p.src))
		if err != nil {
			return "", fmt.Errorf("upstream %s: %w", p.src, err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != p.sum {
			return "", fmt.Errorf("upstream %s: sha256 %s, pinned %s: refusing a changed copy of pfSense's code (fetch it again at the pinned commit)", filepath.Join(dir, p.src), got, p.sum)
		}
	}
	return dir, nil
}

// pfSenseMachinePath maps a pinned file to its path on pfSense.
func pfSenseMachinePath(src string) string {
	if rest, ok := strings.CutPrefix(src, "pfsense-2.7.2/src"); ok {
		return rest
	}
	// PEAR lives in /usr/local/share/pear on pfSense (php.ini include_path).
	return "/usr/local/share/pear/" + strings.TrimPrefix(src, "pear-Net_IPv6/")
}

// netIPv6ForPHP8 makes the pinned PEAR Net_IPv6 (1.1.0RC5, written for PHP
// 4 and 5) loadable by PHP 8, with the two changes the PEAR release pfSense
// 2.7.2 ships (net/pear-Net_IPv6 1.3.0b4) made: its methods are static
// (pfSense calls Net_IPv6::checkIPv6() statically, util.inc:773, a fatal
// error in PHP 8 otherwise) and string offsets use [] (curly braces are a
// compile error since PHP 8.0, Net/IPv6.php:846). It is the only upstream
// file the lab installs changed; docs/lab-emulation.md says so.
func netIPv6ForPHP8(b []byte) []byte {
	b = regexp.MustCompile(`(?m)^    function `).ReplaceAll(b, []byte("    static function "))
	return bytes.ReplaceAll(b, []byte("$ip{$pos}"), []byte("$ip[$pos]"))
}

// pfSenseExecutable: the scripts pfSense runs directly (their #! line).
func pfSenseExecutable(p string) bool {
	return strings.HasPrefix(p, "/etc/rc.") || p == "/usr/local/sbin/pfSsh.php"
}

// gwUsrBinApplets are the busybox tools pfSense's PHP calls by /usr/bin
// path (e.g. util.inc:2940 `/usr/bin/awk`, pfsense-utils.inc:1021
// `/usr/bin/grep`); busybox's are in /bin on every lab machine.
var gwUsrBinApplets = []string{"awk", "grep", "sed", "cut", "sort", "head", "tail", "wc", "tr", "uniq", "xargs", "find", "touch", "stat", "env", "nohup", "logger"}

// installPfSense puts pfSense's code, Debian's php-cli and the shim layer
// into the gateway's root.
func (s machineSpec) installPfSense() error {
	up, err := PfSenseUpstream()
	if err != nil {
		return fmt.Errorf("machine %s: %w", s.name, err)
	}
	for _, p := range pfSensePins {
		b, err := os.ReadFile(filepath.Join(up, p.src))
		if err != nil {
			return fmt.Errorf("machine %s: %w", s.name, err)
		}
		dst := pfSenseMachinePath(p.src)
		if strings.HasPrefix(p.src, "pear-Net_IPv6/") {
			b = netIPv6ForPHP8(b)
		}
		mode := os.FileMode(0o644)
		if pfSenseExecutable(dst) {
			mode = 0o755
		}
		_ = os.Remove(s.path(dst)) // an emulator link
		if err := s.writeFile(File{Path: dst, Content: b, Mode: mode}); err != nil {
			return err
		}
	}
	if err := s.installPHP(); err != nil {
		return fmt.Errorf("machine %s: php-cli: %w", s.name, err)
	}
	if err := s.installSFTPServer(); err != nil {
		return fmt.Errorf("machine %s: sftp-server: %w", s.name, err)
	}
	err = fs.WalkDir(gwPHP, "gwphp", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := gwPHP.ReadFile(p)
		if err != nil {
			return err
		}
		return s.writeFile(File{Path: gwShimDir + strings.TrimPrefix(p, "gwphp"), Content: b, Mode: 0o644})
	})
	if err != nil {
		return fmt.Errorf("machine %s: %w", s.name, err)
	}
	for _, d := range []string{"/var/etc", "/var/db", "/var/run", "/var/log", "/cf/conf/backup", "/usr/bin"} {
		if err := os.MkdirAll(s.path(d), 0o755); err != nil {
			return fmt.Errorf("machine %s: %w", s.name, err)
		}
	}
	for _, a := range gwUsrBinApplets {
		if _, err := os.Lstat(s.path("/usr/bin/" + a)); err == nil {
			continue
		}
		if err := os.Symlink("/bin/busybox", s.path("/usr/bin/"+a)); err != nil {
			return fmt.Errorf("machine %s: %w", s.name, err)
		}
	}
	return s.loginShell()
}

// loginShell makes root's login shell pfSense's /etc/rc.initial (pfSense's
// /etc/master.passwd; rc.initial runs `-c CMD` with /bin/sh -c, rc.initial
// lines 46-57). sshd takes the shell from this box's passwd before it
// enters the chroot, and runs that path inside it: that path becomes a
// script handing its arguments to rc.initial, and the bash it held moves to
// /usr/local/bin/bash.
func (s machineSpec) loginShell() error {
	shell, err := hostRootShell()
	if err != nil {
		return fmt.Errorf("machine %s: %w", s.name, err)
	}
	if shell == "/bin/sh" || shell == "/etc/rc.initial" {
		return fmt.Errorf("machine %s: root's shell on this box is %s, which the gateway's rc.initial itself needs: give root another shell (e.g. /bin/bash)", s.name, shell)
	}
	if shell == "/bin/bash" {
		_ = os.Remove(s.path("/usr/local/bin/bash"))
		if err := os.Rename(s.path("/bin/bash"), s.path("/usr/local/bin/bash")); err != nil {
			return fmt.Errorf("machine %s: %w", s.name, err)
		}
	}
	login := "#!/bin/sh\n# arbo lab: sshd runs root's shell of the lab's box (" + shell + ") inside the\n# chroot; on pfSense root's shell is /etc/rc.initial.\nexec /etc/rc.initial \"$@\"\n"
	if err := s.writeFile(File{Path: shell, Content: []byte(login), Mode: 0o755}); err != nil {
		return err
	}
	pw := strings.Replace(passwd, ":/root:/bin/bash\n", ":/root:/etc/rc.initial\n", 1)
	return s.writeFile(File{Path: "/etc/passwd", Content: []byte(pw), Mode: 0o644})
}

// hostRootShell is root's shell in this box's /etc/passwd, the one sshd
// runs.
func hostRootShell() (string, error) {
	b, err := os.ReadFile("/etc/passwd")
	if err != nil {
		return "", err
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Split(l, ":")
		if len(f) >= 7 && f[0] == "root" {
			if f[6] == "" {
				return "/bin/sh", nil
			}
			return f[6], nil
		}
	}
	return "", errors.New("no root in /etc/passwd")
}

// pfSenseSFTPServer is the sftp subsystem of pfSense's sshd_config
// (`Subsystem sftp /usr/libexec/sftp-server`, written by pfSense's
// src/etc/sshd).
const pfSenseSFTPServer = "/usr/libexec/sftp-server"

// debianSFTPServers are where Debian's openssh-sftp-server puts it.
var debianSFTPServers = []string{"/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server", "/usr/lib/sftp-server"}

// installSFTPServer copies this box's OpenSSH sftp-server, with the
// libraries ldd lists, to pfSense's path in the gateway's root.
func (s machineSpec) installSFTPServer() error {
	var src string
	for _, p := range debianSFTPServers {
		if _, err := os.Stat(p); err == nil {
			src = p
			break
		}
	}
	if src == "" {
		return fmt.Errorf("none of %v: install openssh-sftp-server", debianSFTPServers)
	}
	out, err := exec.Command("ldd", src).Output()
	if err != nil && len(out) == 0 {
		return fmt.Errorf("ldd %s: %w", src, err)
	}
	for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
		if err := copyFileFollow(m[1], s.path(m[1])); err != nil {
			return err
		}
	}
	return copyFileFollow(src, s.path(pfSenseSFTPServer))
}

// phpInfo is what the host's php-cli reports about itself.
type phpInfo struct{ binary, iniDir, scanDir, extDir string }

func hostPHP() (phpInfo, error) {
	php, err := exec.LookPath("php")
	if err != nil {
		return phpInfo{}, errors.New("no php on PATH: install Debian's php-cli and php-xml")
	}
	out, err := exec.Command(php, "-n", "-r", `echo PHP_BINARY, "\n", PHP_CONFIG_FILE_PATH, "\n", PHP_CONFIG_FILE_SCAN_DIR, "\n", PHP_EXTENSION_DIR, "\n";`).Output()
	if err != nil {
		return phpInfo{}, fmt.Errorf("%s: %w", php, err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(f) != 4 {
		return phpInfo{}, fmt.Errorf("%s: unexpected answer %q", php, out)
	}
	bin, err := filepath.EvalSymlinks(f[0])
	if err != nil {
		return phpInfo{}, err
	}
	return phpInfo{binary: bin, iniDir: f[1], scanDir: f[2], extDir: f[3]}, nil
}

var lddPath = regexp.MustCompile(`(?:=> )?(/\S+) \(0x`)

// installPHP copies the host's php-cli, its extensions and the shared
// libraries they need (ldd) into the gateway's root, at the same paths, and
// points pfSense's interpreters (#!/usr/local/bin/php-cgi) at it. Copies,
// not links: a command run in the machine never changes the host's files.
func (s machineSpec) installPHP() error {
	pi, err := hostPHP()
	if err != nil {
		return err
	}
	files := []string{pi.binary}
	exts, _ := filepath.Glob(filepath.Join(pi.extDir, "*.so"))
	files = append(files, exts...)
	libs := map[string]bool{}
	args := append([]string{}, files...)
	out, err := exec.Command("ldd", args...).Output()
	if err != nil && len(out) == 0 {
		return fmt.Errorf("ldd: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if m := lddPath.FindStringSubmatch(sc.Text()); m != nil {
			libs[m[1]] = true
		}
	}
	for _, l := range sortedKeys(libs) {
		files = append(files, l)
	}
	for _, f := range files {
		if err := copyFileFollow(f, s.path(f)); err != nil {
			return err
		}
	}
	// The extensions php-cli loads (Debian's conf.d: symlinks into
	// mods-available), then the lab's php.ini in place of Debian's.
	if pi.scanDir != "" {
		inis, _ := filepath.Glob(filepath.Join(pi.scanDir, "*.ini"))
		for _, f := range inis {
			if err := copyFileFollow(f, s.path(f)); err != nil {
				return err
			}
		}
	}
	ini, err := gwPHP.ReadFile("gwphp/php.ini")
	if err != nil {
		return err
	}
	if err := s.writeFile(File{Path: filepath.Join(pi.iniDir, "php.ini"), Content: ini, Mode: 0o644}); err != nil {
		return err
	}
	// Debian's PHP takes time zones from the system's tzdata (a segfault
	// without it); pfSense's default is Etc/UTC.
	for _, z := range []string{"UTC", "Etc/UTC"} {
		f := filepath.Join("/usr/share/zoneinfo", z)
		if err := copyFileFollow(f, s.path(f)); err != nil {
			return err
		}
	}
	_ = os.Remove(s.path("/usr/local/bin/php-cgi"))
	if err := os.Symlink(pi.binary, s.path("/usr/local/bin/php-cgi")); err != nil {
		return err
	}
	return s.writeFile(File{Path: "/usr/local/bin/php", Content: []byte(fmt.Sprintf(phpWrapper, pi.binary)), Mode: 0o755})
}

// phpWrapper is /usr/local/bin/php on the lab gateway. PHP applies
// auto_prepend_file (the shim) to script files only, not to `php -r CODE`,
// while pfSense's functions exist in every PHP run there (pfSense.so is an
// extension): so `-r CODE` runs as a script file holding CODE.
const phpWrapper = `#!/bin/sh
# arbo lab: php with pfSense's shim layer for -r too (internal/lab/pfsense.go).
if [ "$1" = "-r" ] && [ $# -ge 2 ]; then
	code=$2
	shift 2
	f=$(mktemp /tmp/lab-php-r.XXXXXX) || exit 1
	printf '<?php %%s\n' "$code" > "$f"
	%[1]s -f "$f" -- "$@"
	rc=$?
	rm -f "$f"
	exit $rc
fi
exec %[1]s "$@"
`

// copyFileFollow copies the file src resolves to, keeping its mode, to dst.
func copyFileFollow(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	_ = os.Remove(dst)
	return copyFile(src, dst, fi.Mode().Perm())
}
