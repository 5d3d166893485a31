package plan

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/arbo-project/arbo/pf"
	"github.com/arbo-project/arbo/remote"
)

// PFLive is what pf runs on a host, as pfctl prints it: whether it is
// enabled, the loaded translation and filter rules (numeric ports, -P),
// the interfaces it skips and the contents of its tables. Plan compares
// the listing's digest with the one apply recorded after its last load;
// check --live judges the rules themselves.
type PFLive struct {
	// Err is why pfctl could not show the state ("/dev/pf: No such file
	// or directory" while pf.ko is not loaded): pf then filters nothing.
	Err     string
	Enabled bool
	Info    []byte            // pfctl -s info
	Rules   []byte            // pfctl -P -s rules
	NAT     []byte            // pfctl -P -s nat
	Ifaces  []byte            // pfctl -v -s Interfaces
	Tables  map[string][]byte // name → pfctl -t NAME -T show
	Digest  string            // pf.ListingDigest(NAT, Rules)
}

// pfScript shows pf's state in one round trip. It is a constant: table
// names come from pfctl itself, quoted by the shell, never from the
// topology. Each section ends with a marker line and pfctl's exit status.
const (
	pfShowScript = `pfctl -s info; echo "--arbo-- $?"; pfctl -P -s rules; echo "--arbo-- $?"; pfctl -P -s nat; echo "--arbo-- $?"; ` +
		`pfctl -v -s Interfaces; echo "--arbo-- $?"; `
	pfScript = pfShowScript +
		`for t in $(pfctl -s Tables); do echo "--arbo-table-- $t"; pfctl -t "$t" -T show; done; echo "--arbo-- $?"`
	// pfGatewayScript leaves the tables out: pfSense's bogons tables hold
	// tens of thousands of networks, and the gateway's rules are not
	// judged address by address (its trackers are).
	pfGatewayScript = pfShowScript + `echo "--arbo-- 0"`
)

// ReadPF reads pf's live state on a host (with tables) or, with gateway
// set, on the gateway (without). An answer arbo cannot read (no markers:
// not a FreeBSD shell) is an error; pfctl failing (pf.ko not loaded) is a
// PFLive with Err set.
func ReadPF(ctx context.Context, t Target, machine string, gateway bool) (*PFLive, error) {
	script := pfScript
	if gateway {
		script = pfGatewayScript
	}
	res, err := t.Run(ctx, []string{"/bin/sh", "-c", script}, remote.RunOpts{Timeout: remote.DefaultReadTimeout})
	if err != nil {
		return nil, fmt.Errorf("machine %s: reading pf's state: %w", machine, err)
	}
	return parsePFScript(machine, res.Stdout, res.Stderr)
}

func parsePFScript(machine string, out, stderr []byte) (*PFLive, error) {
	var sections [][]byte
	var codes []int
	tables := map[string][]byte{}
	var cur bytes.Buffer
	table := ""
	for _, l := range strings.SplitAfter(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "--arbo-- "):
			code, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(l, "--arbo-- ")))
			if err != nil {
				return nil, fmt.Errorf("machine %s: pf's state: bad marker %q", machine, strings.TrimSpace(l))
			}
			if table != "" {
				tables[table] = bytes.Clone(cur.Bytes())
				table = ""
				cur.Reset()
			}
			sections = append(sections, bytes.Clone(cur.Bytes()))
			codes = append(codes, code)
			cur.Reset()
		case strings.HasPrefix(l, "--arbo-table-- "):
			if table != "" {
				tables[table] = bytes.Clone(cur.Bytes())
			}
			cur.Reset()
			table = strings.TrimSpace(strings.TrimPrefix(l, "--arbo-table-- "))
		default:
			cur.WriteString(l)
		}
	}
	if len(sections) != 5 {
		return nil, fmt.Errorf("machine %s: pf's state: expected 5 sections from pfctl, got %d (is this a FreeBSD host with pfctl?)", machine, len(sections))
	}
	p := &PFLive{Info: sections[0], Rules: sections[1], NAT: sections[2], Ifaces: sections[3], Tables: tables}
	if codes[0] != 0 {
		msg := strings.TrimSpace(string(stderr))
		if msg == "" {
			msg = fmt.Sprintf("pfctl -s info exited %d", codes[0])
		}
		p.Err = msg
		return p, nil
	}
	for i, what := range []string{"pfctl -s info", "pfctl -P -s rules", "pfctl -P -s nat", "pfctl -v -s Interfaces"} {
		if codes[i] != 0 {
			return nil, fmt.Errorf("machine %s: %s exited %d: %s", machine, what, codes[i], strings.TrimSpace(string(stderr)))
		}
	}
	info, err := pf.ParseInfo(machine+": pfctl -s info", p.Info)
	if err != nil {
		return nil, err
	}
	p.Enabled = info.Enabled
	p.Digest = pf.ListingDigest(p.NAT, p.Rules)
	return p, nil
}

// Ruleset parses the loaded rules for judging: translation and filter
// rules, the skipped interfaces, every table's contents. An error names
// the machine and the line of pfctl's output.
func (p *PFLive) Ruleset(machine string) (*pf.Ruleset, error) {
	nat, err := pf.ParseListing(machine+": pfctl -s nat", p.NAT)
	if err != nil {
		return nil, err
	}
	r, err := pf.ParseListing(machine+": pfctl -s rules", p.Rules)
	if err != nil {
		return nil, err
	}
	r.NatTags = append(r.NatTags, nat.NatTags...)
	skips, err := pf.ParseSkips(machine+": pfctl -v -s Interfaces", p.Ifaces)
	if err != nil {
		return nil, err
	}
	r.Skip = skips
	for name, show := range p.Tables {
		if err := r.SetTable(name, show); err != nil {
			return nil, fmt.Errorf("machine %s: %w", machine, err)
		}
	}
	return r, nil
}

// ReadManifest reads what arbo recorded on a machine (nil when it never
// applied there).
func ReadManifest(ctx context.Context, t Target, machine string) (*Manifest, error) {
	got, err := t.ReadFiles(ctx, []string{ManifestPath})
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", machine, err)
	}
	b, ok := got[ManifestPath]
	if !ok {
		return nil, nil
	}
	m, err := parseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("machine %s: %w", machine, err)
	}
	return m, nil
}
