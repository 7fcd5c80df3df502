//go:build linux

package testenv_test

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/onbehalf/onbehalf/internal/testenv"
)

// A test that panics runs no cleanup: the helper process it started must die with it anyway.
// The test binary runs itself as a test that starts `sleep` through StartChild, prints the
// child's pid and panics; the child must be gone soon after.
func TestChildDiesWhenTheTestProcessPanics(t *testing.T) {
	if os.Getenv("TESTENV_CHILD_PANIC") == "1" {
		cmd := exec.Command("sleep", "60")
		if _, err := testenv.StartChild(cmd); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("child " + strconv.Itoa(cmd.Process.Pid) + "\n")
		panic("deliberate panic with a child running")
	}
	if _, err := exec.LookPath("sleep"); err != nil {
		t.Skip("no sleep binary")
	}
	self := exec.Command(os.Args[0], "-test.run=^TestChildDiesWhenTheTestProcessPanics$", "-test.count=1")
	self.Env = append(os.Environ(), "TESTENV_CHILD_PANIC=1")
	out, _ := self.StdoutPipe()
	if err := self.Start(); err != nil {
		t.Fatal(err)
	}
	pid := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "child "); ok {
			pid, _ = strconv.Atoi(v)
		}
	}
	err := self.Wait()
	if pid == 0 {
		t.Fatalf("the panicking test reported no child (exit: %v)", err)
	}
	if err == nil {
		t.Fatal("the panicking test process exited successfully")
	}
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("child %d outlived the test process that panicked", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid is a running (not zombie) process.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z'
}
