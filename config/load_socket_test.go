package config

import (
	"os"
	"path/filepath"
	"testing"
)

// SocketOf reads the socket of a file that is TOML but not a valid
// configuration, and gives up on one that is not TOML.
func TestSocketOf(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name, text string
		want       string
		ok         bool
	}{
		{"invalid but TOML", "socket = \"/tmp/x.sock\"\nnot_a_key = 1\n[plans.p]\nsource = 5\n", "/tmp/x.sock", true},
		{"no socket", "log_level = \"loud\"\n", DefaultSocket, true},
		{"not TOML", "socket = \"/tmp/x.sock\"\n[[[\n", "", false},
		{"socket not a string", "socket = 5\n", "", false},
		{"empty socket", "socket = \"\"\n", "", false},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name+".toml")
		if err := os.WriteFile(p, []byte(c.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(p); err == nil {
			t.Fatalf("%s: the file is a valid configuration; the test wants an invalid one", c.name)
		}
		got, ok := SocketOf(p)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: SocketOf = %q, %v; want %q, %v", c.name, got, ok, c.want, c.ok)
		}
	}
	if _, ok := SocketOf(filepath.Join(dir, "missing.toml")); ok {
		t.Error("SocketOf of a missing file succeeded")
	}
}
