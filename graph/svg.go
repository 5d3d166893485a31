package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
)

// ErrNoGraphviz says that `dot` is not installed.
var ErrNoGraphviz = errors.New("the dot command is not installed: install Graphviz (apt-get install graphviz / pkg install graphviz) or use --format dot")

// Render runs Graphviz's dot on a DOT document and returns its output in
// format (svg, png, …). dot is looked up on PATH and run with an argument
// list; the document goes in on stdin.
func Render(ctx context.Context, dotSrc []byte, format string) ([]byte, error) {
	path, err := exec.LookPath("dot")
	if err != nil {
		return nil, ErrNoGraphviz
	}
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-T"+format)
	cmd.Stdin = bytes.NewReader(dotSrc)
	cmd.Stdout = &out
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			return nil, fmt.Errorf("dot -T%s: %w", format, err)
		}
		return nil, fmt.Errorf("dot -T%s: %w: %s", format, err, msg)
	}
	return out.Bytes(), nil
}
