package testenv

import (
	"os/exec"
	"runtime"
)

// StartChild starts cmd as a test's helper process (Azurite, the Agents Playground, the
// handler): in its own process group, so a stop signal sent to the group reaches everything it
// runs, and — where the kernel offers it (Linux) — killed by the kernel when the test process
// dies. A test that panics, times out or calls os.Exit never runs its cleanups nor TestMain's
// deferred calls; without this the helper would keep running after the test binary is gone.
//
// The returned channel yields cmd.Wait's result once the process has exited. Callers must not
// call cmd.Wait themselves.
//
// Linux delivers the death signal when the thread that forked the child ends, not the process
// (man 2 prctl, PR_SET_PDEATHSIG; golang/go#27505); the Go runtime ends a thread only when a
// goroutine locked to it exits. So the child is started from a goroutine that keeps its
// thread locked until the child has exited.
func StartChild(cmd *exec.Cmd) (<-chan error, error) {
	setChildAttrs(cmd)
	started := make(chan error, 1)
	exited := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			started <- err
			return
		}
		started <- nil
		exited <- cmd.Wait()
		// Returning while locked ends this thread; the child is gone already.
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return exited, nil
}
