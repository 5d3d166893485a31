package inventory

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// badByteAt is the first character of a file that YAML refuses, where it is
// and what to tell the user.
type badByteAt struct {
	Pos Pos
	Msg string
}

// badByte finds the first byte YAML refuses, which yaml.v3 reports only as
// "control characters are not allowed" or "invalid leading UTF-8 octet" with
// no line (issue 11, item 11). The allowed set is YAML 1.2's c-printable
// (§5.1): tab, LF, CR, 0x20-0x7E, NEL (U+0085), U+00A0-U+D7FF,
// U+E000-U+FFFD and U+10000-U+10FFFF, the same test yaml.v3's reader makes.
// The column counts characters, from 1. A file starting with a UTF-16 byte
// order mark is left to the YAML library, which decodes it.
func badByte(data []byte) (badByteAt, bool) {
	if bytes.HasPrefix(data, []byte{0xff, 0xfe}) || bytes.HasPrefix(data, []byte{0xfe, 0xff}) {
		return badByteAt{}, true
	}
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		at := Pos{Line: line, Col: col}
		switch {
		case r == utf8.RuneError && n <= 1:
			return badByteAt{at, fmt.Sprintf(`a byte that is not UTF-8 (\x%02x); save the file as UTF-8 or remove it`, data[i])}, false
		case r == 0:
			return badByteAt{at, `a NUL byte (\x00); remove it`}, false
		case !yamlPrintable(r):
			return badByteAt{at, fmt.Sprintf(`a control character (\x%02x); remove it`, r)}, false
		}
		switch {
		case r == '\n', r == '\r' && (i+1 >= len(data) || data[i+1] != '\n'):
			line, col = line+1, 1
		case r == '\r':
			// CR of a CRLF: the LF ends the line.
		default:
			col++
		}
		i += n
	}
	return badByteAt{}, true
}

func yamlPrintable(r rune) bool {
	switch {
	case r == '\t', r == '\n', r == '\r', r >= 0x20 && r <= 0x7e, r == 0x85:
		return true
	case r >= 0xa0 && r <= 0xd7ff, r >= 0xe000 && r <= 0xfffd, r >= 0x10000 && r <= 0x10ffff:
		return true
	}
	return false
}
