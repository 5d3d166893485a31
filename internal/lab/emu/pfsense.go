package emu

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"
)

func init() {
	commands["rc.filter_configure_sync"] = filterConfigureSync
	commands["pfSsh.php"] = pfSshPHP
}

// pfSense paths (pfsense.md §2.1).
const (
	PfConfigXML   = "/cf/conf/config.xml"
	PfConfigBad   = "/cf/conf/config.xml.bad"
	PfBackupDir   = "/cf/conf/backup"
	PfConfigCache = "/tmp/config.cache"
	PfSystemLog   = "/var/log/system.log"
)

// pfListTags is listtags() of xmlparse.inc (pfsense.md §1.1): only these
// elements may repeat, at any depth.
var pfListTags = map[string]bool{}

func init() {
	for _, t := range strings.Fields(`acls alias aliasurl allowedip allowedhostname authserver bridged
	build_port_path ca cacert cert crl clone config container columnitem checkipservice depends_on_package
	disk dnsserver dnsupdate domainoverrides dyndns earlyshellcmd element encryption-algorithm-option field
	fieldname gateway_item gateway_group gif gre group hash-algorithm-option hosts ifgroupentry igmpentry
	interface_array item key lagg laggroup lbaction lbpool l7rules lbprotocol member menu tab mobilekey
	mobilegroup monitor_type mount npt ntpserver onetoone openvpn-server openvpn-client openvpn-csc option
	package passthrumac phase1 phase2 ppp pppoe priv proxyarpnet pool qinqentry queue pages pipe radnsserver
	roll route row rrddatafile rule schedule service servernat servers sshkeyfile serversdisabled shellcmd
	staticmap subqueue switch swport timerange tunnel user vip virtual_server vlan vlangroup voucherdbfile
	vxlan wgpeer winsserver wolentry widget xmldatafile`) {
		pfListTags[t] = true
	}
}

// parsePfConfig checks a config.xml the way parse_xml_config() does
// (pfsense.md §1.1): well-formed XML, root <pfsense>, names folded to lower
// case, and no non-list element twice under the same parent. It returns the
// <revision><time> (empty if none).
func parsePfConfig(data []byte) (revision string, err error) {
	d := xml.NewDecoder(bytes.NewReader(data))
	type frame struct {
		name string
		seen map[string]bool
	}
	var stack []frame
	var text strings.Builder
	root := ""
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("XML error: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			name := strings.ToLower(t.Name.Local)
			if len(stack) == 0 {
				if root != "" {
					return "", errors.New("XML error: more than one root element")
				}
				root = name
			} else {
				parent := stack[len(stack)-1]
				if parent.seen[name] && !pfListTags[name] {
					line, _ := d.InputPos()
					return "", fmt.Errorf("XML error: %s at line %d cannot occur more than once", name, line)
				}
				parent.seen[name] = true
			}
			stack = append(stack, frame{name: name, seen: map[string]bool{}})
			text.Reset()
		case xml.CharData:
			text.Write(t)
		case xml.EndElement:
			if len(stack) >= 3 && stack[len(stack)-1].name == "time" && stack[len(stack)-2].name == "revision" && stack[len(stack)-3].name == "pfsense" {
				revision = strings.TrimSpace(text.String())
			}
			stack = stack[:len(stack)-1]
		}
	}
	if root != "pfsense" {
		return "", fmt.Errorf("XML error: root element is %q, not pfsense", root)
	}
	return revision, nil
}

// filterConfigureSync loads the config as config.inc does, then "reloads
// the filter" (pfsense.md §2.2, §1.1, §2.4):
//   - /tmp/config.cache exists: it is used and config.xml is not read;
//   - config.xml is invalid (or the config-load fault is set): it is moved
//     to config.xml.bad, the newest parseable backup is restored as
//     config.xml, the restore is logged, and the command still exits 0;
//   - on success the loaded digest and revision go to ConfigLoadedFile and
//     the cache is written.
func filterConfigureSync(e *env, args []string) int {
	cache := e.p(PfConfigCache)
	if b, err := os.ReadFile(cache); err == nil {
		return e.recordConfigLoaded("cache", b)
	}
	b, err := os.ReadFile(e.p(PfConfigXML))
	if err != nil {
		fmt.Fprintf(e.stderr, "pfSense: cannot read %s: %v\n", PfConfigXML, unwrapPathErr(err))
		return 1
	}
	_, perr := parsePfConfig(b)
	if fault := e.m(FailConfigLoad); perr == nil && exists(fault) {
		msg, _ := os.ReadFile(fault)
		perr = fmt.Errorf("lab fault config-load: %s", strings.TrimSpace(string(msg)))
		os.Remove(fault)
	}
	if perr == nil {
		return e.recordConfigLoaded("config.xml", b)
	}
	e.pfLog(fmt.Sprintf("%s: %v", PfConfigXML, perr))
	if err := os.Rename(e.p(PfConfigXML), e.p(PfConfigBad)); err != nil {
		fmt.Fprintf(e.stderr, "pfSense: %v\n", err)
		return 1
	}
	backup, data := e.newestBackup()
	if backup == "" {
		e.pfLog("No valid backup to restore; config.xml is missing")
		fmt.Fprintf(e.stderr, "pfSense: %s is invalid and no backup could be restored\n", PfConfigXML)
		return 1
	}
	if err := writeFile(e.p(PfConfigXML), data, 0o644); err != nil {
		fmt.Fprintf(e.stderr, "pfSense: %v\n", err)
		return 1
	}
	e.pfLog(fmt.Sprintf("Restored \"%s\" because \"%s\" is invalid", backup, PfConfigXML))
	return e.recordConfigLoaded("config.xml", data)
}

// newestBackup picks the backup with the highest time in its name
// (config-<unixtime>.xml) that parses (discover_last_backup, pfsense.md §1.1).
func (e *env) newestBackup() (string, []byte) {
	ents, _ := os.ReadDir(e.p(PfBackupDir))
	type cand struct {
		t    int64
		name string
	}
	var cs []cand
	for _, de := range ents {
		n := de.Name()
		if !strings.HasPrefix(n, "config-") || !strings.HasSuffix(n, ".xml") {
			continue
		}
		t, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(n, "config-"), ".xml"), 10, 64)
		if err != nil {
			continue
		}
		cs = append(cs, cand{t, n})
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].t > cs[j].t })
	for _, c := range cs {
		path := PfBackupDir + "/" + c.name
		b, err := os.ReadFile(e.p(path))
		if err != nil {
			continue
		}
		if _, err := parsePfConfig(b); err == nil {
			return path, b
		}
	}
	return "", nil
}

func (e *env) recordConfigLoaded(source string, data []byte) int {
	rev, _ := parsePfConfig(data)
	sum := sha256.Sum256(data)
	rec := fmt.Sprintf("source=%s\nsha256=%s\nrevision=%s\n", source, hex.EncodeToString(sum[:]), rev)
	if err := writeFile(e.m(ConfigLoadedFile), []byte(rec), 0o644); err != nil {
		fmt.Fprintf(e.stderr, "pfSense: %v\n", err)
		return 1
	}
	// The lab's cache is a copy of the XML it stands for (pfSense's is a
	// PHP serialize()d array).
	if source != "cache" {
		if err := writeFile(e.p(PfConfigCache), data, 0o644); err != nil {
			fmt.Fprintf(e.stderr, "pfSense: %v\n", err)
			return 1
		}
	}
	e.recordService("filter", "reload")
	return 0
}

func (e *env) pfLog(msg string) {
	line := fmt.Sprintf("%s %s php: rc.filter_configure_sync: %s", time.Now().Format(time.Stamp), e.hostname(), msg)
	_ = appendLine(e.p(PfSystemLog), line)
}

// pfSshPHP: `pfSsh.php playback svc <action> <service>` records the service
// action (pfsense.md §2.4); other playbacks and piped PHP are recorded only.
func pfSshPHP(e *env, args []string) int {
	a := args[1:]
	if len(a) >= 4 && a[0] == "playback" && a[1] == "svc" {
		e.recordService(a[3], a[2])
		return 0
	}
	if len(a) >= 2 && a[0] == "playback" {
		e.recordService("playback", a[1])
		return 0
	}
	if e.stdin != nil {
		b, _ := io.ReadAll(e.stdin)
		_ = appendLine(e.m(StateDir+"/pfSsh.input"), strings.TrimSpace(string(b)))
	}
	e.recordService("pfSsh.php", strings.Join(a, " "))
	return 0
}
