package pfsense

import _ "embed"

//go:embed factory/config.xml
var factory []byte

// Factory returns pfSense's factory default config.xml (Apache-2.0, see
// factory/NOTICE), the base to merge into when a box has no config yet, and
// the config the tests start from. The caller gets its own copy.
func Factory() []byte { return append([]byte(nil), factory...) }
