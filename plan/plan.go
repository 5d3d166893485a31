package plan

import (
	"encoding/json"
	"fmt"

	"github.com/arbo-project/arbo/state"
)

// Operations an action performs. Create, update and delete are counted in
// the summary line as add, change and destroy; the others are activation
// steps that follow them.
const (
	OpCreate   = "create"
	OpUpdate   = "update"
	OpDelete   = "delete"
	OpAdopt    = "adopt"    // take ownership of a jail that already matches
	OpEnable   = "enable"   // make a retired (norun) jail runnable again
	OpStart    = "start"    // start a jail
	OpRestart  = "restart"  // restart a jail or a service
	OpReload   = "reload"   // pf (commit-confirmed), unbound, the gateway
	OpInstall  = "install"  // packages into a jail root; bootstrap
	OpArchive  = "archive"  // stop and archive a jail removed from the topology
	OpDestroy  = "destroy"  // delete a jail's root (after archiving)
	OpRoute    = "route"    // bring a static route live
	OpCloneup  = "cloneup"  // create lo1
	OpConflict = "conflict" // arbo refuses to act on this machine
)

// Kinds of object an action is about.
const (
	KindFile     = "file"
	KindJail     = "jail"
	KindPF       = "pf"
	KindDNS      = "dns"
	KindPfSense  = "pfsense"
	KindNet      = "net"
	KindPackages = "packages"
	KindBasejail = "basejail"
	KindService  = "service"
	KindZFS      = "zfs"
)

// Action is one step of a machine's plan.
type Action struct {
	Op        string   `json:"action"`
	Kind      string   `json:"kind"`
	Target    string   `json:"target"` // a path, a jail, a route, a service
	Jail      string   `json:"jail,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	Diff      string   `json:"diff,omitempty"` // unified diff; never for sensitive files
	Sensitive bool     `json:"sensitive,omitempty"`
	From      string   `json:"from,omitempty"`      // the local file a secret comes from (never its content)
	TakeOver  bool     `json:"take_over,omitempty"` // an existing file arbo does not own yet: kept as <path>.arbo-orig
	Before    string   `json:"before_sha256,omitempty"`
	After     string   `json:"after_sha256,omitempty"`
	Args      []string `json:"args,omitempty"` // for route actions: destination and gateway
	// Data marks the archive of a jail that was ever in a data tier (the
	// manifest's sticky flag).
	Data bool `json:"data,omitempty"`
	// MoveTo (on the old host's archive) and MoveFrom (on the new host's
	// create, enable or adopt) tie the two halves of a move (Plan.Moves).
	MoveTo   string `json:"move_to,omitempty"`
	MoveFrom string `json:"move_from,omitempty"`
}

// PlannedFile is a desired file as a plan carries it: a sensitive file has
// neither its content nor its digest in a plan (apply renders it again).
type PlannedFile struct {
	Path      string         `json:"path"`
	Mode      uint32         `json:"mode"`
	Owner     string         `json:"owner"`
	Group     string         `json:"group"`
	Sensitive bool           `json:"sensitive,omitempty"`
	Jail      string         `json:"jail,omitempty"`
	Reload    []state.Reload `json:"reload,omitempty"`
	SHA256    string         `json:"sha256,omitempty"` // not for sensitive files
	Content   []byte         `json:"content,omitempty"`
}

// MachinePlan is the plan for one machine.
type MachinePlan struct {
	Name     string            `json:"name"`
	Kind     string            `json:"kind"`
	Actions  []Action          `json:"actions"`
	Files    []PlannedFile     `json:"files,omitempty"`
	Jails    []state.Jail      `json:"jails"`
	Routes   []state.Route     `json:"routes,omitempty"`
	Reads    map[string]string `json:"reads,omitempty"` // path → sha256 of what was read ("" = absent)
	Warnings []string          `json:"warnings,omitempty"`
	Error    string            `json:"error,omitempty"` // why nothing can be done on this machine
	Release  string            `json:"release,omitempty"`
}

// Options are the decisions that change what a plan does. They are
// recorded in a saved plan so that apply does exactly what was reviewed.
type Options struct {
	AllowDestroy bool     `json:"allow_destroy"`
	Bootstrap    bool     `json:"bootstrap"`
	Hosts        []string `json:"hosts,omitempty"`
	Offline      bool     `json:"offline,omitempty"`
	// CookieFile is --cookie-file: the Erlang cookie comes from this file
	// instead of the topology's cookie_file. A path, never the content.
	CookieFile string `json:"cookie_file,omitempty"`
	// AllowEmpty is --allow-empty: a jail that held data may move to
	// another host and start there empty (its data does not travel yet);
	// the old copy stays archived and retired.
	AllowEmpty bool `json:"allow_empty,omitempty"`
}

// Plan is the whole plan: what `arbo plan --out` saves and `arbo apply FILE`
// applies.
type Plan struct {
	FormatVersion int           `json:"format_version"`
	Kind          string        `json:"kind"` // always "arbo-plan": a plan file is known by its content
	Cluster       string        `json:"cluster"`
	Topology      string        `json:"topology"`        // the file, as given
	TopologySHA   string        `json:"topology_sha256"` // what it was made from
	Options       Options       `json:"options"`
	Revision      int64         `json:"revision_time,omitempty"` // unix time config.xml's <revision> was rendered with
	SSH           *SSHSettings  `json:"ssh,omitempty"`           // the command line's SSH settings the plan was made with
	Machines      []MachinePlan `json:"machines"`
	Moves         []Move        `json:"moves,omitempty"` // jails whose host changed: see LinkMoves
}

// SSHSettings are the SSH options of the command line a plan was made
// with (--ssh-config, -i, --known-hosts, --ssh-user, --ssh-port; files as
// absolute paths), so that `arbo apply plan.json` reaches the machines the
// same way without them. Options given to apply win. No secret is here:
// only the names of files. --trust-new-hosts is not kept: trusting a new
// key is a decision of each run.
type SSHSettings struct {
	ConfigFile    string   `json:"config_file,omitempty"`
	IdentityFiles []string `json:"identity_files,omitempty"`
	KnownHosts    string   `json:"known_hosts,omitempty"`
	User          string   `json:"user,omitempty"`
	Port          int      `json:"port,omitempty"`
}

// PlanKind marks a plan file.
const PlanKind = "arbo-plan"

// Counts are the summary line's numbers.
type Counts struct{ Add, Change, Destroy, Other int }

// Count sums what the plan does.
func (p *Plan) Count() Counts {
	var c Counts
	c.Change = len(p.Moves) // a move is one change, not an archive and a create
	for _, m := range p.Machines {
		for _, a := range m.Actions {
			if a.MoveTo != "" || a.MoveFrom != "" {
				continue
			}
			switch a.Op {
			case OpCreate:
				c.Add++
			case OpUpdate, OpAdopt, OpEnable:
				c.Change++
			case OpDelete, OpArchive, OpDestroy:
				c.Destroy++
			case OpConflict:
			default:
				c.Other++
			}
		}
	}
	return c
}

// HasChanges reports whether applying would change anything.
func (p *Plan) HasChanges() bool {
	for _, m := range p.Machines {
		if len(m.Actions) > 0 {
			return true
		}
	}
	return false
}

// HasErrors reports whether some machine cannot be planned or applied.
func (p *Plan) HasErrors() bool {
	for _, m := range p.Machines {
		if m.Error != "" {
			return true
		}
	}
	return false
}

// Encode serialises a plan for --out.
func (p *Plan) Encode() ([]byte, error) {
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// IsPlan reports whether b is a saved plan, by its content, not its name.
func IsPlan(b []byte) bool {
	var head struct {
		Kind string `json:"kind"`
	}
	return json.Unmarshal(b, &head) == nil && head.Kind == PlanKind
}

// Decode reads a saved plan.
func Decode(b []byte) (*Plan, error) {
	var p Plan
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("not a readable plan: %w", err)
	}
	if p.Kind != PlanKind {
		return nil, fmt.Errorf("not an arbo plan (kind %q)", p.Kind)
	}
	if p.FormatVersion != 1 {
		return nil, fmt.Errorf("plan format_version %d: this arbo knows 1", p.FormatVersion)
	}
	return &p, nil
}

// Machine returns the plan of a machine, or nil.
func (p *Plan) Machine(name string) *MachinePlan {
	for i := range p.Machines {
		if p.Machines[i].Name == name {
			return &p.Machines[i]
		}
	}
	return nil
}
