// Package plan compares what every machine should look like (the rendered
// state) with what it has, lists the actions that close the gap, and applies
// them in the order DESIGN.md "Apply, safely" gives. Plans are data: they
// print for people, serialise for pipelines, and refuse to apply once a
// machine has changed since they were made.
package plan

import (
	"context"
	"io/fs"

	"github.com/arbo-project/arbo/remote"
)

// Target is one machine as plan sees it: *remote.Conn in production, an
// in-memory machine in unit tests.
type Target interface {
	ReadFiles(ctx context.Context, paths []string) (map[string][]byte, error)
	Stat(p string) (fs.FileInfo, error)
	Lstat(p string) (fs.FileInfo, error)
	Run(ctx context.Context, argv []string, opts remote.RunOpts) (remote.Result, error)
	WriteFileAtomic(p string, content []byte, mode fs.FileMode, uid, gid int) error
	WriteFileAtomicKeepPrev(p string, content []byte, mode fs.FileMode, uid, gid int) error
	MkdirAll(p string, mode fs.FileMode) error
	Remove(p string) error
	CheckNoSymlinks(root, p string) error
}

// Fixed paths arbo keeps on every machine.
const (
	ManifestPath = "/var/db/arbo/manifest.json"
	LockPath     = "/var/db/arbo/lock"
	StateDir     = "/var/db/arbo"
	PFPath       = "/etc/pf.conf"
	PFStaged     = "/etc/pf.conf.arbo-new"
	ConfigXML    = "/cf/conf/config.xml"
	ConfigCache  = "/tmp/config.cache"
	BackupDir    = "/cf/conf/backup"
	JailDir      = "/usr/jails"
	BasejailDir  = "/usr/jails/basejail"
	EzjailAdmin  = "/usr/local/bin/ezjail-admin"
	EzjailCfgDir = "/usr/local/etc/ezjail"
	// NoRunSuffix marks a jail's ezjail config as not runnable
	// (`ezjail-admin config -r norun`, ezjail-admin:1638).
	NoRunSuffix = ".norun"
)
