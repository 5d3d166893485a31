package plan

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	udiff "github.com/aymanbagabas/go-udiff"
)

// A new file's diff is built without the diff algorithm; it must read as
// the algorithm's would, truncation included.
func TestCreateDiffMatchesUnified(t *testing.T) {
	long := strings.Repeat("x\n", maxDiff+10)
	for _, s := range []string{"a\n", "a\nb\n", "a\nb", "a", "", "\n", "\n\n", "a\r\nb\n", "é\n\tz", long, long + "tail",
		strings.Repeat("y\n", maxDiff-4) + "end", strings.Repeat("y\n", maxDiff-3) + "end", strings.Repeat("y\n", maxDiff-2) + "end"} {
		want := udiff.Unified("a/p", "b/p", "", s)
		if n := strings.Count(want, "\n"); n > maxDiff {
			cut, k := want, 0
			for i := range want {
				if want[i] == '\n' {
					if k++; k == maxDiff {
						cut = want[:i+1]
						break
					}
				}
			}
			want = cut + "… " + strconv.Itoa(n-maxDiff) + " more lines of diff\n"
		}
		if got := unified("/p", nil, []byte(s)); got != want {
			t.Errorf("unified(nil, %.20q…) differs from the diff algorithm's:\n got %.300q\nwant %.300q", s, got, want)
		}
	}
}

// A line longer than maxDiffLine (a pf table of a large cluster) is cut on
// a character boundary, in new and in changed files alike, saying how much
// is left out; the other lines are whole.
func TestDiffCutsLongLines(t *testing.T) {
	table := "table <arbo_app> const { " + strings.Repeat("10.64.0.1, é", 5000) + " }"
	before := []byte("# head\n" + table + "\nshort\n")
	after := []byte("# head\n" + table + ", 10.64.9.9\nshort\nnew\n")
	for name, d := range map[string]string{"create": unified("/etc/pf.conf", nil, after), "update": unified("/etc/pf.conf", before, after)} {
		if !utf8.ValidString(d) {
			t.Errorf("%s: the cut split a character", name)
		}
		for l := range strings.Lines(d) {
			if len(l) > maxDiffLine+60 {
				t.Errorf("%s: a diff line of %d bytes", name, len(l))
			}
		}
		if !strings.Contains(d, "more bytes on this line)\n") || !strings.Contains(d, "+new\n") || !strings.Contains(d, "short\n") {
			t.Errorf("%s: diff is\n%s", name, d)
		}
		if len(d) > 5*maxDiffLine {
			t.Errorf("%s: diff of %d bytes", name, len(d))
		}
	}
}
