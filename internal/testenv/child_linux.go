package testenv

import (
	"os/exec"
	"syscall"
)

// setChildAttrs puts the child in its own process group and asks the kernel to SIGKILL it when
// its parent dies (prctl PR_SET_PDEATHSIG, man 2 prctl).
func setChildAttrs(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
}
