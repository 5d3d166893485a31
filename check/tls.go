package check

import (
	"time"

	"github.com/arbo-project/arbo/erlang/tlsca"
	"github.com/arbo-project/arbo/inventory"
)

// checkErlangTLS (ARBO014, cluster): with erlang.tls, the cluster CA exists
// and has not expired, and every Erlang node has a certificate of that CA
// naming the node, not expired: errors, since a node without one cannot
// join. A CA or a certificate ending within tlsca.RenewBefore is a warning.
// It reads the files in erlang-tls/ beside erlang.cookie_file (never their
// secrets into a message).
func checkErlangTLS(x *env) []Finding {
	now := x.o.Now
	if now.IsZero() {
		now = time.Now()
	}
	var out []Finding
	for _, p := range tlsca.Inspect(x.c, now) {
		f := Finding{Machine: inventory.MachineCluster, Subject: p.Subject, Message: p.Message,
			Pos: firstPos(x.c.Pos("erlang.tls"), x.c.Erlang.Pos), Severity: Warning}
		if p.Error {
			f.Severity = Error
		}
		out = append(out, f)
	}
	return out
}

// tlsCluster: ARBO014 is a testcase of the cluster only with erlang.tls.
func tlsCluster(x *env) []string {
	if x.c.Erlang == nil || !x.c.Erlang.TLS {
		return nil
	}
	return cluster(x)
}
