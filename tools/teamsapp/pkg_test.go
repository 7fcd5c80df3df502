package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	botID  = "6f1d3c1e-2b7a-4c55-9a0e-1d2c3b4a5f60"
	teamID = "0b9f0a43-7b8e-4a3e-8f41-52c1c3f2e9aa"
	host   = "func-abc123.azurewebsites.net"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func goodEnv() map[string]string {
	return map[string]string{"TEAMS_APP_ID": teamID, "BOT_APP_ID": botID, "FUNCTION_APP_HOSTNAME": host}
}

func TestValuesFromEnvRejectsBadInput(t *testing.T) {
	cases := []struct {
		name, key, value, want string
	}{
		{"missing bot id", "BOT_APP_ID", "", "BOT_APP_ID not set"},
		{"bot id not a guid", "BOT_APP_ID", "not-a-guid", "BOT_APP_ID is not a GUID"},
		{"teams id not a guid", "TEAMS_APP_ID", "123", "TEAMS_APP_ID is not a GUID"},
		{"host with scheme", "FUNCTION_APP_HOSTNAME", "https://" + host, "bare host name"},
		{"host with path", "FUNCTION_APP_HOSTNAME", host + "/api", "bare host name"},
		{"http privacy url", "TEAMS_APP_PRIVACY_URL", "http://example.com/privacy", "TEAMS_APP_PRIVACY_URL must be an https URL"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := goodEnv()
			e[c.key] = c.value
			_, err := ValuesFromEnv(env(e))
			if !errors.Is(err, ErrPlaceholder) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrPlaceholder mentioning %q", err, c.want)
			}
		})
	}
}

func TestRenderFillsEveryPlaceholderAndEscapes(t *testing.T) {
	v := Values{"A": `x"y`, "B": "b"}
	out, err := Render([]byte(`{"a":"${{A}}","b":"pre-${{B}}"}`), v)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	if got["a"] != `x"y` || got["b"] != "pre-b" {
		t.Fatalf("got %v", got)
	}
}

func TestRenderNamesUnfilledPlaceholders(t *testing.T) {
	_, err := Render([]byte(`{"a":"${{ZED}}","b":"${{ALPHA}}"}`), Values{})
	if !errors.Is(err, ErrPlaceholder) || !strings.Contains(err.Error(), "ALPHA, ZED") {
		t.Fatalf("err = %v", err)
	}
}

// The real template, filled from a deployment's outputs, gives a manifest whose SSO fields
// carry the deployed bot id and host.
func TestWritePackageFromRepositoryTemplate(t *testing.T) {
	v, err := ValuesFromEnv(env(goodEnv()))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "build", "app.zip")
	if err := WritePackage("../../appPackage", out, v); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	files := map[string][]byte{}
	for _, f := range zr.File {
		names = append(names, f.Name)
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name], _ = io.ReadAll(rc)
		rc.Close()
	}
	if strings.Join(names, ",") != "manifest.json,color.png,outline.png" {
		t.Fatalf("zip holds %v", names)
	}
	var m struct {
		ID   string `json:"id"`
		Bots []struct {
			BotID string `json:"botId"`
		} `json:"bots"`
		ValidDomains       []string `json:"validDomains"`
		WebApplicationInfo struct {
			ID       string `json:"id"`
			Resource string `json:"resource"`
		} `json:"webApplicationInfo"`
	}
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatal(err)
	}
	if m.ID != teamID || m.Bots[0].BotID != botID || m.WebApplicationInfo.ID != botID ||
		m.WebApplicationInfo.Resource != "api://botid-"+botID {
		t.Fatalf("manifest ids wrong: %+v", m)
	}
	if !contains(m.ValidDomains, host) || !contains(m.ValidDomains, "*.botframework.com") {
		t.Fatalf("validDomains = %v", m.ValidDomains)
	}
	if bytes.Contains(files["manifest.json"], []byte("${{")) {
		t.Fatal("manifest still holds a placeholder")
	}
}

func TestWritePackageRefusesWrongIconSizeAndWritesNothing(t *testing.T) {
	dir := t.TempDir()
	tmpl, _ := os.ReadFile("../../appPackage/manifest.template.json")
	os.WriteFile(filepath.Join(dir, "manifest.template.json"), tmpl, 0o644)
	c, _, _ := Icons()
	os.WriteFile(filepath.Join(dir, "color.png"), c, 0o644)
	os.WriteFile(filepath.Join(dir, "outline.png"), c, 0o644) // 192×192 where 32×32 is needed
	v, _ := ValuesFromEnv(env(goodEnv()))
	out := filepath.Join(dir, "out.zip")
	err := WritePackage(dir, out, v)
	if err == nil || !strings.Contains(err.Error(), "outline.png is 192x192") {
		t.Fatalf("err = %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Fatal("a zip was written despite the error")
	}
}

// The committed icons are the ones the generator draws, at the sizes Teams requires, and the
// outline icon is white on transparent only.
func TestCommittedIconsMatchGenerator(t *testing.T) {
	c, o, err := Icons()
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string][]byte{"color.png": c, "outline.png": o} {
		got, err := os.ReadFile(filepath.Join("../../appPackage", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s differs from the generator's output: run `make teams-icons`", name)
		}
	}
	img, err := png.Decode(bytes.NewReader(o))
	if err != nil {
		t.Fatal(err)
	}
	opaque := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, a := img.At(x, y).RGBA()
			if a == 0 {
				continue
			}
			opaque++
			// Non-premultiplied white at any alpha: every channel equals alpha.
			if r != a || g != a || bl != a {
				t.Fatalf("outline pixel (%d,%d) is not white", x, y)
			}
		}
	}
	if opaque == 0 {
		t.Fatal("outline icon is empty")
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
