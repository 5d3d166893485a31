package inventory

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A byte YAML refuses gets its line and column (issue 11, item 11):
// yaml.v3 says only "control characters are not allowed", with no line.
func TestBadBytesHaveAPosition(t *testing.T) {
	const head = "version: 1\ncluster:\n  name: demo\n"
	for _, tc := range []struct {
		name, data, want string
	}{
		{"nul", head + "  domain: ex\x00ample.org\n", "t.yaml:4:13: a NUL byte (\\x00); remove it"},
		{"invalid utf-8", head + "  domain: caf\xff.org\n", "t.yaml:4:14: a byte that is not UTF-8 (\\xff); save the file as UTF-8 or remove it"},
		{"truncated utf-8 at end", head + "# caf\xc3", "t.yaml:4:6: a byte that is not UTF-8 (\\xc3); save the file as UTF-8 or remove it"},
		{"lone control", "version: 1\n\x1b[2Jcluster:\n", "t.yaml:2:1: a control character (\\x1b); remove it"},
		{"bell in a comment", "# ok\n# é ding\x07\nversion: 1\n", "t.yaml:2:9: a control character (\\x07); remove it"},
		{"C1 control", "version: 1 # \u0080\n", "t.yaml:1:14: a control character (\\x80); remove it"},
		{"DEL", "version: 1\x7f\n", "t.yaml:1:11: a control character (\\x7f); remove it"},
		{"CR LF counts one line", "version: 1\r\n\r\n\x01", "t.yaml:3:1: a control character (\\x01); remove it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tc.data))
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("want a LoadError, got %v", err)
			}
			if got := err.Error(); got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// Characters YAML allows pass the scan: tab, CR, NEL, non-ASCII text, a
// byte-order mark at the start.
func TestAllowedBytesPassTheScan(t *testing.T) {
	for _, s := range []string{"a\tb\r\n", "é€😀 \u0085 \u00a0", "\ufeffversion: 1\n"} {
		if p, ok := badByte([]byte(s)); !ok {
			t.Errorf("%q refused: %+v", s, p)
		}
	}
}

func TestLoadNamesTheFileAndLine(t *testing.T) {
	f := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(f, []byte("version: 1\ncluster: {name: a\x00}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(f)
	if err == nil || !strings.HasPrefix(err.Error(), f+":2:18: a NUL byte") {
		t.Fatalf("got %v", err)
	}
}
