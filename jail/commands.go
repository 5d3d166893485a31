package jail

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/arbo-project/arbo/inventory"
	"github.com/arbo-project/arbo/state"
)

// The argument lists below are run as they are (never through a shell):
// argv[0] is the program.

// EzjailAdmin is the program that manages ezjail jails.
const EzjailAdmin = "ezjail-admin"

// CreateArgs creates j: ezjail-admin create [-f flavour] [-s quota] name
// ipstring. On a host with ezjail_use_zfs_for_jails the jail gets its own
// dataset, `zfs create -o mountpoint=<root> [-o quota=<size>]
// <parentzfs>/<name>` (ezjail-admin:711,716): -s becomes the dataset's
// quota, when ezjail's size parser takes it (CreateSizeOK); otherwise apply
// sets the quota after the create (ZFSQuotaArgs).
func CreateArgs(j state.Jail) []string {
	args := []string{EzjailAdmin, "create"}
	if j.Flavour != "" {
		args = append(args, "-f", j.Flavour)
	}
	if j.ZFS != "" && CreateSizeOK(j.Quota) {
		args = append(args, "-s", j.Quota)
	}
	return append(args, j.Name, j.IP)
}

var ezjailSize = regexp.MustCompile(`^[1-9][0-9]*[KMG]?$`)

// CreateSizeOK reports whether ezjail-admin create -s takes q as it is:
// ezjail turns the size into bytes with tr/sed/bc knowing only the
// suffixes K, M and G (and B, W, X), and refuses a result that is not an
// integer above 0 (ezjail-admin:576-579: `[ $? -eq 0 -a ${_val} -gt 0 ]`),
// so 1.5G, 2T, 0 and none are set with zfs set quota instead.
func CreateSizeOK(q string) bool { return ezjailSize.MatchString(q) }

// QuotaAfterCreate reports whether apply sets j's quota with zfs set right
// after ezjail-admin create, because create -s cannot carry it.
func QuotaAfterCreate(j state.Jail) bool {
	return j.ZFS != "" && j.Quota != "" && !CreateSizeOK(j.Quota) && !NoQuota(j.Quota)
}

// NoQuota reports whether q means no quota at all (ZFS's default).
func NoQuota(q string) bool { return q == "none" || q == "0" }

// ZFSQuotaArgs sets a dataset's quota: zfs set quota=<q> <dataset>.
func ZFSQuotaArgs(dataset, q string) []string {
	return []string{"zfs", "set", "quota=" + q, dataset}
}

// ZFSListArgs lists dataset and its children with their quotas in bytes
// (-p; 0 is none): name<TAB>quota lines, or exit 1 "dataset does not
// exist".
func ZFSListArgs(dataset string) []string {
	return []string{"zfs", "list", "-H", "-p", "-o", "name,quota", "-t", "filesystem", "-r", "-d", "1", dataset}
}

// ZFSParentCmds create the parent of a host's jail datasets
// (ezjail_jailzfs) as ezjail's own ensure_jailzfs does (ezjail-admin:
// 444-448): its parents with -p, then itself mounted at the jail directory,
// without -p ("the -o options are ignored" with it, ezjail-admin:446).
// ezjail-admin create refuses a ZFS jail without it (ezjail-admin:714).
func ZFSParentCmds(dataset string) [][]string {
	var cmds [][]string
	if strings.Count(dataset, "/") >= 2 {
		cmds = append(cmds, []string{"zfs", "create", "-p", dataset[:strings.LastIndexByte(dataset, '/')]})
	}
	return append(cmds, []string{"zfs", "create", "-o", "mountpoint=" + JailDir, dataset})
}

// QuotaBytes is a ZFS size in bytes as zfs(8) reads it (zfs_nicestrtonum:
// a number, maybe with a fraction, times 1024 per suffix step K M G T P E;
// the fraction's bytes truncated); none is 0.
func QuotaBytes(q string) (uint64, error) {
	if NoQuota(q) {
		return 0, nil
	}
	num, shift := q, 0
	if i := strings.IndexAny(q, "KMGTPE"); i >= 0 && i == len(q)-1 {
		num, shift = q[:i], strings.IndexByte("KMGTPE", q[i])+1
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || strings.ContainsAny(num, "eE+-") {
		return 0, fmt.Errorf("%q is not a ZFS size", q)
	}
	return uint64(f * math.Pow(1024, float64(shift))), nil
}

// StartArgs starts j. "one" skips the ezjail_enable check (rc.subr(8)), so
// that a start works before rc.conf.local is in place.
func StartArgs(j state.Jail) []string { return []string{EzjailAdmin, "onestart", j.Name} }

// StopArgs stops j (running its rc.shutdown: ezjail_exec_stop).
func StopArgs(j state.Jail) []string { return []string{EzjailAdmin, "onestop", j.Name} }

// RestartArgs restarts j.
func RestartArgs(j state.Jail) []string { return []string{EzjailAdmin, "onerestart", j.Name} }

// ArchiveArgs archives j into ezjail's archive directory
// (/usr/jails/ezjail_archives). Without -f ezjail refuses a running jail:
// stop it first so that a database is archived consistently.
func ArchiveArgs(j state.Jail) []string { return []string{EzjailAdmin, "archive", j.Name} }

// DeleteArgs removes j's ezjail config and fstab; with wipe also its root
// (or, for a ZFS jail, the dataset <parentzfs>/<jail_hostname>: see the
// package README on why arbo wipes ZFS jails itself).
func DeleteArgs(j state.Jail, wipe bool) []string {
	args := []string{EzjailAdmin, "delete"}
	if wipe {
		args = append(args, "-w")
	}
	return append(args, j.Name)
}

// ZFSDestroyArgs destroys a ZFS jail's dataset, <dataset>/<name> as
// ezjail-admin create made it.
func ZFSDestroyArgs(dataset string, j state.Jail) []string {
	return []string{"zfs", "destroy", "-r", dataset + "/" + j.Name}
}

// RunArgs makes a retired (norun) jail runnable again: ezjail-admin renames
// <safename>.norun back to <safename> (ezjail-admin:1637, `config -r run`).
// Until then ezjail's rc script skips the jail on every start
// (ezjail.sh:59,66) and `onestart` exits 0 without starting it
// (ezjail-admin:148 leaves .norun jails out of its success check).
func RunArgs(j state.Jail) []string {
	return []string{EzjailAdmin, "config", "-r", "run", j.Name}
}

// RunningArgs asks jail(8)'s list whether j runs: jls -j <safename> jid
// exits 1 ("jail not found") when it does not, as rc.d/jail itself asks
// (freebsd/libexec/rc/rc.d/jail:495,556). ezjail's rc script names a
// jail by its safename (ezjail.sh:47,109), and jail(8) takes that name.
// arbo checks with it after every start, as an `onestart` that skipped the
// jail also exits 0 (ezjail-admin:148).
func RunningArgs(j state.Jail) []string {
	safe := j.SafeName
	if safe == "" {
		safe = inventory.SafeName(j.Name)
	}
	return []string{"jls", "-j", safe, "jid"}
}

// NoRunArgs keeps an archived jail that stays on disk (a retired data
// jail) from starting at boot: ezjail renames its config to <name>.norun.
func NoRunArgs(j state.Jail) []string {
	return []string{EzjailAdmin, "config", "-r", "norun", j.Name}
}

// InstallBasejailArgs installs the basejail and newjail template for
// release (e.g. 14.2-RELEASE). -r keeps ezjail from asking interactively.
func InstallBasejailArgs(release string) []string {
	args := []string{EzjailAdmin, "install"}
	if release != "" {
		args = append(args, "-r", release)
	}
	return args
}

// PkgInstallArgs installs pkgs into the jail root from the host, so that a
// jail without egress still gets them: pkg -r <root> install -y pkgs…
func PkgInstallArgs(root string, pkgs []string) []string {
	return append([]string{"pkg", "-r", root, "install", "-y"}, pkgs...)
}

// ConfigTestArgs is ezjail's cheap existence probe: exit 0 when ezjail
// knows the jail (runnable or not), 1 otherwise.
func ConfigTestArgs(j state.Jail) []string {
	return []string{EzjailAdmin, "config", "-r", "test", j.Name}
}
