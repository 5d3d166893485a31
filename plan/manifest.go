package plan

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Manifest is what arbo records on a machine, in ManifestPath: the files and
// jails it owns and what it last activated, so that a later run knows what
// to update or remove, and finishes a run that was cut between writing and
// activating.
type Manifest struct {
	FormatVersion int            `json:"format_version"`
	Cluster       string         `json:"cluster"`
	Machine       string         `json:"machine"`
	Files         []ManifestFile `json:"files"`
	Jails         []ManifestJail `json:"jails"`
	Activated     ManifestActive `json:"activated"`
}

// ManifestFile is a file arbo owns.
type ManifestFile struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Jail   string `json:"jail,omitempty"`
}

// ManifestJail is a jail arbo owns. Retired jails were removed from the
// topology and archived, but kept (data tier without --allow-destroy).
type ManifestJail struct {
	Name    string `json:"name"`
	Tier    string `json:"tier"`
	Data    bool   `json:"data,omitempty"`
	Retired bool   `json:"retired,omitempty"`
}

// ManifestActive records what is live, not only written.
type ManifestActive struct {
	PF string `json:"pf_sha256,omitempty"` // the ruleset loaded and confirmed
	// PFListing is pf.ListingDigest of what pfctl listed right after that
	// load: plan compares the machine's listing with it (live drift).
	PFListing string   `json:"pf_listing_sha256,omitempty"`
	Routes    []string `json:"routes,omitempty"` // "dest via"
	// Installed are the static routes ("dest via") arbo added or changed
	// itself: the only routes it ever deletes, once the topology no longer
	// has them (a removed host or jail, a prefix that moved).
	Installed []string `json:"routes_installed,omitempty"`
	Config    string   `json:"config_sha256,omitempty"` // the gateway's config.xml loaded
	Jails     []string `json:"jails_started,omitempty"` // jails arbo started
	Pending   []string `json:"pending,omitempty"`       // activations written but not done yet
}

func parseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", ManifestPath, err)
	}
	if m.FormatVersion != 1 {
		return nil, fmt.Errorf("%s: format_version %d: this arbo knows 1", ManifestPath, m.FormatVersion)
	}
	return &m, nil
}

func (m *Manifest) encode() []byte {
	sort.Slice(m.Files, func(i, j int) bool { return m.Files[i].Path < m.Files[j].Path })
	sort.Slice(m.Jails, func(i, j int) bool { return m.Jails[i].Name < m.Jails[j].Name })
	b, _ := json.MarshalIndent(m, "", "  ")
	return append(b, '\n')
}

func (m *Manifest) file(path string) *ManifestFile {
	if m == nil {
		return nil
	}
	for i := range m.Files {
		if m.Files[i].Path == path {
			return &m.Files[i]
		}
	}
	return nil
}

func (m *Manifest) jail(name string) *ManifestJail {
	if m == nil {
		return nil
	}
	for i := range m.Jails {
		if m.Jails[i].Name == name {
			return &m.Jails[i]
		}
	}
	return nil
}
