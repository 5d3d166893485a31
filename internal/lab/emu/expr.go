package emu

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

func init() { commands["expr"] = exprCmd }

// exprCmd is FreeBSD expr(1) (bin/expr/expr.y): POSIX expressions with
// `--` ending the options (rc.d/jail: `expr -- "${_mask}" : "${_addr}\(.*\)"`;
// busybox's expr takes `--` for an operand and fails). Exit status 0 when
// the result is neither null nor zero, 1 when it is, 2 for a bad
// expression.
func exprCmd(e *env, args []string) int {
	a := args[1:]
	if len(a) > 0 && a[0] == "--" {
		a = a[1:]
	}
	p := &exprParser{toks: a}
	v, err := p.or()
	if err == nil && p.i < len(p.toks) {
		err = fmt.Errorf("syntax error")
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "expr: %v\n", err)
		return 2
	}
	fmt.Fprintln(e.stdout, v)
	if v == "" || isZero(v) {
		return 1
	}
	return 0
}

func isZero(v string) bool {
	n, err := strconv.ParseInt(v, 10, 64)
	return err == nil && n == 0
}

type exprParser struct {
	toks []string
	i    int
}

func (p *exprParser) peek() string {
	if p.i < len(p.toks) {
		return p.toks[p.i]
	}
	return ""
}

func (p *exprParser) binary(ops []string, next func() (string, error), apply func(op, l, r string) (string, error)) (string, error) {
	l, err := next()
	if err != nil {
		return "", err
	}
	for p.i < len(p.toks) && contains(ops, p.peek()) {
		op := p.toks[p.i]
		p.i++
		r, err := next()
		if err != nil {
			return "", err
		}
		if l, err = apply(op, l, r); err != nil {
			return "", err
		}
	}
	return l, nil
}

func (p *exprParser) or() (string, error) {
	return p.binary([]string{"|"}, p.and, func(_, l, r string) (string, error) {
		if l != "" && !isZero(l) {
			return l, nil
		}
		if r != "" && !isZero(r) {
			return r, nil
		}
		return "0", nil
	})
}

func (p *exprParser) and() (string, error) {
	return p.binary([]string{"&"}, p.cmp, func(_, l, r string) (string, error) {
		if l == "" || isZero(l) || r == "" || isZero(r) {
			return "0", nil
		}
		return l, nil
	})
}

func (p *exprParser) cmp() (string, error) {
	return p.binary([]string{"=", ">", ">=", "<", "<=", "!="}, p.add, func(op, l, r string) (string, error) {
		var c int
		ln, lerr := strconv.ParseInt(l, 10, 64)
		rn, rerr := strconv.ParseInt(r, 10, 64)
		if lerr == nil && rerr == nil {
			switch {
			case ln < rn:
				c = -1
			case ln > rn:
				c = 1
			}
		} else {
			c = strings.Compare(l, r)
		}
		ok := map[string]bool{"=": c == 0, ">": c > 0, ">=": c >= 0, "<": c < 0, "<=": c <= 0, "!=": c != 0}[op]
		if ok {
			return "1", nil
		}
		return "0", nil
	})
}

func arith(op, l, r string) (string, error) {
	ln, err1 := strconv.ParseInt(l, 10, 64)
	rn, err2 := strconv.ParseInt(r, 10, 64)
	if err1 != nil || err2 != nil {
		return "", fmt.Errorf("not a decimal number: '%s'", map[bool]string{true: l, false: r}[err1 != nil])
	}
	switch op {
	case "+":
		return strconv.FormatInt(ln+rn, 10), nil
	case "-":
		return strconv.FormatInt(ln-rn, 10), nil
	case "*":
		return strconv.FormatInt(ln*rn, 10), nil
	}
	if rn == 0 {
		return "", fmt.Errorf("division by zero")
	}
	if op == "/" {
		return strconv.FormatInt(ln/rn, 10), nil
	}
	return strconv.FormatInt(ln%rn, 10), nil
}

func (p *exprParser) add() (string, error) { return p.binary([]string{"+", "-"}, p.mul, arith) }
func (p *exprParser) mul() (string, error) {
	return p.binary([]string{"*", "/", "%"}, p.match, arith)
}

func (p *exprParser) match() (string, error) {
	return p.binary([]string{":"}, p.primary, func(_, l, r string) (string, error) {
		re, groups, err := breToRegexp(r)
		if err != nil {
			return "", err
		}
		m := re.FindStringSubmatch(l)
		if groups > 0 {
			if m == nil {
				return "", nil
			}
			return m[1], nil
		}
		if m == nil {
			return "0", nil
		}
		return strconv.Itoa(len(m[0])), nil
	})
}

func (p *exprParser) primary() (string, error) {
	if p.i >= len(p.toks) {
		return "", fmt.Errorf("syntax error")
	}
	t := p.toks[p.i]
	p.i++
	if t == "(" {
		v, err := p.or()
		if err != nil {
			return "", err
		}
		if p.peek() != ")" {
			return "", fmt.Errorf("syntax error")
		}
		p.i++
		return v, nil
	}
	return t, nil
}

// breToRegexp translates a POSIX basic regular expression, anchored at the
// start as expr's `:` is, to Go's syntax; it returns the number of \( \)
// groups.
func breToRegexp(bre string) (*regexp.Regexp, int, error) {
	var b strings.Builder
	b.WriteString("^")
	groups := 0
	for i := 0; i < len(bre); i++ {
		c := bre[i]
		switch {
		case c == '\\' && i+1 < len(bre):
			i++
			switch n := bre[i]; n {
			case '(':
				groups++
				b.WriteByte('(')
			case ')', '{', '}':
				b.WriteByte(n)
			default:
				b.WriteByte('\\')
				b.WriteByte(n)
			}
		case c == '^' && i == 0:
		case strings.IndexByte("(){}+?|", c) >= 0:
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, 0, fmt.Errorf("%v", err)
	}
	return re, groups, nil
}
