package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// ErrPlaceholder reports a manifest placeholder with no usable value.
var ErrPlaceholder = errors.New("manifest placeholder")

// placeholder matches ${{NAME}} as written in manifest.template.json.
var placeholder = regexp.MustCompile(`\$\{\{([A-Z0-9_]+)\}\}`)

var (
	guidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	hostPattern = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$`)
)

// Values holds the placeholder values, by name.
type Values map[string]string

// ValuesFromEnv reads the placeholder values through lookup (os.LookupEnv in the command).
// TEAMS_APP_ID, BOT_APP_ID and FUNCTION_APP_HOSTNAME are required; the developer URLs default
// to the Function App's https base URL.
func ValuesFromEnv(lookup func(string) (string, bool)) (Values, error) {
	v := Values{}
	var missing []string
	for _, name := range []string{"TEAMS_APP_ID", "BOT_APP_ID", "FUNCTION_APP_HOSTNAME"} {
		s, ok := lookup(name)
		if !ok || strings.TrimSpace(s) == "" {
			missing = append(missing, name)
			continue
		}
		v[name] = strings.TrimSpace(s)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("read package values: %w: %s not set (run `azd provision`, or `azd env get-values`)", ErrPlaceholder, strings.Join(missing, ", "))
	}
	for _, name := range []string{"TEAMS_APP_WEBSITE_URL", "TEAMS_APP_PRIVACY_URL", "TEAMS_APP_TERMS_URL"} {
		if s, ok := lookup(name); ok && strings.TrimSpace(s) != "" {
			v[name] = strings.TrimSpace(s)
		} else {
			v[name] = "https://" + v["FUNCTION_APP_HOSTNAME"]
		}
	}
	return v, v.validate()
}

func (v Values) validate() error {
	var problems []string
	for _, name := range []string{"TEAMS_APP_ID", "BOT_APP_ID"} {
		if !guidPattern.MatchString(v[name]) {
			problems = append(problems, name+" is not a GUID")
		}
	}
	if h := v["FUNCTION_APP_HOSTNAME"]; !hostPattern.MatchString(h) {
		problems = append(problems, "FUNCTION_APP_HOSTNAME is not a bare host name (no scheme, no path)")
	}
	for _, name := range []string{"TEAMS_APP_WEBSITE_URL", "TEAMS_APP_PRIVACY_URL", "TEAMS_APP_TERMS_URL"} {
		if !strings.HasPrefix(v[name], "https://") {
			problems = append(problems, name+" must be an https URL")
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("validate package values: %w: %s", ErrPlaceholder, strings.Join(problems, "; "))
	}
	return nil
}

// Render fills every ${{NAME}} in template and returns the manifest, re-indented. It fails
// naming each placeholder that has no value, and when the result is not JSON.
func Render(template []byte, v Values) ([]byte, error) {
	unknown := map[string]bool{}
	out := placeholder.ReplaceAllFunc(template, func(m []byte) []byte {
		name := string(placeholder.FindSubmatch(m)[1])
		val, ok := v[name]
		if !ok {
			unknown[name] = true
			return m
		}
		// Values go into JSON strings: escape them as JSON would (without the quotes).
		enc, _ := json.Marshal(val)
		return enc[1 : len(enc)-1]
	})
	if len(unknown) > 0 {
		names := make([]string, 0, len(unknown))
		for n := range unknown {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("render manifest: %w: no value for %s", ErrPlaceholder, strings.Join(names, ", "))
	}
	var doc any
	if err := json.Unmarshal(out, &doc); err != nil {
		return nil, fmt.Errorf("render manifest: result is not JSON: %w", err)
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "  "); err != nil {
		return nil, fmt.Errorf("render manifest: %w", err)
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// packageTime is the modification time written for every file in the zip.
var packageTime = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// iconSizes are the sizes Teams requires (learn.microsoft.com microsoftteams/platform
// concepts/build-and-test/apps-package: color 192×192, outline 32×32).
var iconSizes = map[string]int{"color.png": 192, "outline.png": 32}

// WritePackage renders dir/manifest.template.json with v and writes the zip to out with
// manifest.json and both icons at its root. Nothing is written when any step fails.
func WritePackage(dir, out string, v Values) error {
	tmpl, err := os.ReadFile(filepath.Join(dir, "manifest.template.json"))
	if err != nil {
		return fmt.Errorf("write package: %w", err)
	}
	manifest, err := Render(tmpl, v)
	if err != nil {
		return err
	}
	files := map[string][]byte{"manifest.json": manifest}
	for name, size := range iconSizes {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return fmt.Errorf("write package: %w", err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("write package: %s: %w", name, err)
		}
		if cfg.Width != size || cfg.Height != size {
			return fmt.Errorf("write package: %s is %dx%d, Teams needs %dx%d", name, cfg.Width, cfg.Height, size, size)
		}
		files[name] = b
	}

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range []string{"manifest.json", "color.png", "outline.png"} {
		// A fixed time keeps the package reproducible; the zero time shows as 1980-00-00.
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: packageTime})
		if err != nil {
			return fmt.Errorf("write package: %w", err)
		}
		if _, err := w.Write(files[name]); err != nil {
			return fmt.Errorf("write package: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("write package: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return fmt.Errorf("write package: %w", err)
	}
	tmp := out + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write package: %w", err)
	}
	if err := os.Rename(tmp, out); err != nil {
		return fmt.Errorf("write package: %w", err)
	}
	return nil
}
