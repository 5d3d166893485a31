// Package lab runs FreeBSD-looking machines behind real OpenSSH servers on
// one Linux box, for arbo's end-to-end tests and for people who want to try
// arbo without FreeBSD hardware (see docs/lab.md and LAB.md).
//
// Each machine is a chroot root with busybox, bash and the emulated FreeBSD
// commands (package emu), an sshd of its own chrooted there, and a TCP proxy
// on the machine's own loopback address that stands for its network card:
// it refuses new connections while the emulated firewall blocks SSH and cuts
// connections on demand.
//
// Everything but this file is Linux-only, so that arbo still builds for
// FreeBSD.
package lab
