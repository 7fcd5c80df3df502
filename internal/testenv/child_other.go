//go:build unix && !linux

package testenv

import (
	"os/exec"
	"syscall"
)

// setChildAttrs puts the child in its own process group. Outside Linux there is no parent-death
// signal: a test process that dies abruptly can leave the child running.
func setChildAttrs(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
}
