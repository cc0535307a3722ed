//go:build unix && !linux

package upstream

import "syscall"

// childAttr puts a stdio child in its own process group, stopped as a
// group.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
