//go:build !linux

package emu

import "errors"

var errNoMount = errors.New("the lab mounts only on Linux")

func mountView(src, dst string, ro, nosymfollow bool) error { return errNoMount }

func unmountView(p string) error { return errNoMount }
