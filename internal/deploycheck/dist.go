package deploycheck

import (
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// ErrDist reports a deployable folder that is not exactly what Azure Functions needs.
var ErrDist = errors.New("deployable folder")

// HandlerBinary is the custom handler executable's name (host.json defaultExecutablePath).
const HandlerBinary = "onbehalf"

// CheckDist verifies the deployable folder built by `make dist` (what `func start
// --script-root` and `azd deploy` use): host.json, one <name>/function.json per folder of
// functionsDir, and a static linux/amd64 executable HandlerBinary — nothing else. Every
// problem found is reported in one error wrapping ErrDist.
func CheckDist(distDir, functionsDir string) error {
	want := map[string]bool{"host.json": true, HandlerBinary: true}
	fns, err := os.ReadDir(functionsDir)
	if err != nil {
		return fmt.Errorf("check dist: %w", err)
	}
	for _, f := range fns {
		if f.IsDir() {
			want[f.Name()] = true
		}
	}
	var problems []error
	entries, err := os.ReadDir(distDir)
	if err != nil {
		return fmt.Errorf("check dist: %w", err)
	}
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Name()] = true
		if !want[e.Name()] {
			problems = append(problems, fmt.Errorf("unexpected %s", e.Name()))
		}
	}
	for _, name := range sortedSet(want) {
		if !have[name] {
			problems = append(problems, fmt.Errorf("missing %s", name))
			continue
		}
		if name == "host.json" || name == HandlerBinary {
			continue
		}
		inner, err := os.ReadDir(filepath.Join(distDir, name))
		if err != nil {
			problems = append(problems, fmt.Errorf("%s is not a function folder: %w", name, err))
			continue
		}
		if len(inner) != 1 || inner[0].Name() != "function.json" {
			problems = append(problems, fmt.Errorf("%s must hold function.json only", name))
		}
	}
	if have[HandlerBinary] {
		if err := checkStaticLinuxAMD64(filepath.Join(distDir, HandlerBinary)); err != nil {
			problems = append(problems, err)
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w %s: %w", ErrDist, distDir, errors.Join(problems...))
	}
	return nil
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// checkStaticLinuxAMD64 requires an executable 64-bit x86-64 ELF with no program interpreter
// (PT_INTERP) and no shared-library dependencies: Flex Consumption's Linux workers run it as is.
func checkStaticLinuxAMD64(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return err
	}
	if st.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not executable", HandlerBinary)
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not an ELF executable: %w", HandlerBinary, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 {
		return fmt.Errorf("%s is %v %v, want ELFCLASS64 EM_X86_64 (linux/amd64)", HandlerBinary, f.Class, f.Machine)
	}
	if f.OSABI != elf.ELFOSABI_NONE && f.OSABI != elf.ELFOSABI_LINUX {
		return fmt.Errorf("%s targets %v, want Linux", HandlerBinary, f.OSABI)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%s is dynamically linked (has a program interpreter); build with CGO_ENABLED=0", HandlerBinary)
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		return fmt.Errorf("%s needs shared libraries %v", HandlerBinary, libs)
	}
	return nil
}
