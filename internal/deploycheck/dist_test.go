package deploycheck

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	binOnce sync.Once
	bins    map[string][]byte
	binErr  error
)

// testBinaries builds a tiny program for linux/amd64 and linux/arm64, statically.
func testBinaries(t *testing.T) map[string][]byte {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "deploycheck-bin")
		if err != nil {
			binErr = err
			return
		}
		defer os.RemoveAll(dir)
		os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module tiny\n\ngo 1.21\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main\n\nfunc main() {}\n"), 0o644)
		bins = map[string][]byte{}
		for _, arch := range []string{"amd64", "arm64"} {
			out := filepath.Join(dir, arch)
			cmd := exec.Command("go", "build", "-o", out, ".")
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=")
			if b, err := cmd.CombinedOutput(); err != nil {
				binErr = errors.New(string(b))
				return
			}
			bins[arch], _ = os.ReadFile(out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return bins
}

// writeDist lays out a deployable folder for functions "messages" and "oauth".
func writeDist(t *testing.T, binary []byte) (dist, functions string) {
	t.Helper()
	root := t.TempDir()
	dist, functions = filepath.Join(root, "dist"), filepath.Join(root, "functions")
	for _, fn := range []string{"messages", "oauth"} {
		os.MkdirAll(filepath.Join(functions, fn), 0o755)
		os.MkdirAll(filepath.Join(dist, fn), 0o755)
		os.WriteFile(filepath.Join(dist, fn, "function.json"), []byte("{}"), 0o644)
	}
	os.WriteFile(filepath.Join(dist, "host.json"), []byte("{}"), 0o644)
	os.WriteFile(filepath.Join(dist, HandlerBinary), binary, 0o755)
	return dist, functions
}

func TestCheckDist(t *testing.T) {
	b := testBinaries(t)
	dynamic, err := os.ReadFile("/bin/true") // a dynamically linked linux/amd64 program
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		binary []byte
		change func(dist string)
		want   string // "" = valid
	}{
		{"valid", b["amd64"], func(string) {}, ""},
		{"extra file", b["amd64"], func(d string) { os.WriteFile(filepath.Join(d, "local.settings.json"), nil, 0o644) }, "unexpected local.settings.json"},
		{"function missing", b["amd64"], func(d string) { os.RemoveAll(filepath.Join(d, "oauth")) }, "missing oauth"},
		{"extra file in a function", b["amd64"], func(d string) { os.WriteFile(filepath.Join(d, "messages", "x.go"), nil, 0o644) }, "messages must hold function.json only"},
		{"host.json missing", b["amd64"], func(d string) { os.Remove(filepath.Join(d, "host.json")) }, "missing host.json"},
		{"arm64 binary", b["arm64"], func(string) {}, "EM_AARCH64"},
		{"dynamic binary", dynamic, func(string) {}, "dynamically linked"},
		{"not executable", b["amd64"], func(d string) { os.Chmod(filepath.Join(d, HandlerBinary), 0o644) }, "not executable"},
		{"not ELF", []byte("#!/bin/sh\n"), func(string) {}, "not an ELF"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dist, fns := writeDist(t, c.binary)
			c.change(dist)
			err := CheckDist(dist, fns)
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrDist) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrDist mentioning %q", err, c.want)
			}
		})
	}
}

// `make dist` (the azd prepackage hook) builds exactly the deployable folder.
func TestMakeDistBuildsTheDeployableFolder(t *testing.T) {
	if _, err := os.Stat(filepath.Join(repoRoot, "handler")); os.IsNotExist(err) {
		t.Skip("handler/ is not in this tree yet; `make dist` has nothing to build")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dist := filepath.Join(t.TempDir(), "app")
	cmd := exec.Command("make", "--no-print-directory", "dist", "DIST="+dist)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make dist: %v\n%s", err, out)
	}
	if err := CheckDist(dist, filepath.Join(repoRoot, "functions")); err != nil {
		t.Fatal(err)
	}
}
