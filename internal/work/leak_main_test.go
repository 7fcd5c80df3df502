package work_test

import (
	"testing"

	"github.com/onbehalf/onbehalf/internal/testenv/logcheck"
)

// TestMain fails the package's tests when anything written through the default slog logger
// holds an issued secret or a secret shape.
func TestMain(m *testing.M) { logcheck.Main(m) }
