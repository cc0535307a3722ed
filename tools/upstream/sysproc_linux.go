package upstream

import "syscall"

// childAttr puts a stdio child in its own process group (stopped as a
// group) and has the kernel kill it if mcpauth itself dies, so no child
// outlives the gateway.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
