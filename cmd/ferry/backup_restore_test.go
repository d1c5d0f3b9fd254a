//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/vault"
)

// minioVaultEnv is newKTEnv's configuration with vault main on its bucket.
func minioVaultEnv(t *testing.T) *ktEnv {
	t.Helper()
	e := newKTEnv(t)
	f, err := os.OpenFile(e.cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n[vaults.main]\nremote = \"s3r\"\nprefix = \"vaults/main/\"\n"); err != nil {
		t.Fatal(err)
	}
	return e
}

// damageChunk flips one byte in the middle of the first chunk of file p
// of a backup in vault main, behind Ferry's back.
func damageChunk(t *testing.T, cfg, id, p string) {
	t.Helper()
	ctx := context.Background()
	g := &globalOptions{configPath: cfg, stdout: io.Discard, stderr: io.Discard}
	s, v, m, err := g.openBackup(ctx, id, "main")
	if err != nil {
		t.Fatal(err)
	}
	defer s.close()
	tree, err := v.Tree(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range tree.Entries {
		if e.Path != p {
			continue
		}
		c := e.Chunks[len(e.Chunks)/2]
		key := vault.PackKey(c.Pack)
		rc, err := v.Store().Open(ctx, key, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		data[c.Offset+c.Size/2] ^= 0x01
		if _, err := v.Store().Put(ctx, key, bytes.NewReader(data), int64(len(data)), remote.PutMeta{}); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("no file %s in backup %s", p, id)
}

// TestRestoreDamagedCLI: `ferry backup restore` (the binary) over a target
// holding a correct 6 MiB big.bin, from a backup with a byte flipped in
// big.bin's chunk and in another file's: both keep what they had, the
// rest is restored, the summary names both (quoting an unprintable name)
// and the exit code is 4; --json lists them too.
func TestRestoreDamagedCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the ferry binary")
	}
	for _, sc := range []struct {
		name string
		env  func(t *testing.T) *ktEnv
	}{
		{"local", func(t *testing.T) *ktEnv { cfg, _ := vaultConfig(t); return &ktEnv{bin: ferryBinary(t), cfg: cfg} }},
		{"minio", minioVaultEnv},
	} {
		t.Run(sc.name, func(t *testing.T) {
			e := sc.env(t)
			must := func(args ...string) string {
				t.Helper()
				out, errOut, code := e.run(t, args...)
				if code != exitOK {
					t.Fatalf("ferry %s: exit %d\n%s\n%s", strings.Join(args, " "), code, out, errOut)
				}
				return out
			}
			src := t.TempDir()
			big, other := make([]byte, 6<<20), make([]byte, 2<<20)
			_, _ = rand.NewChaCha8([32]byte{6}).Read(big)
			_, _ = rand.NewChaCha8([32]byte{2}).Read(other)
			odd := "odd\tname.txt"
			files := map[string][]byte{"big.bin": big, "a/other.bin": other, "small.txt": []byte("small\n"), odd: []byte("odd\n")}
			for p, data := range files {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(src, p), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			must("vault", "init", "main")
			var created struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal([]byte(must("backup", "create", "--vault", "main", src, "--json")), &created); err != nil {
				t.Fatal(err)
			}
			target := filepath.Join(t.TempDir(), "restore")
			must("backup", "restore", created.ID, target)
			bigPath := filepath.Join(target, "big.bin")
			old := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			if err := os.Chtimes(bigPath, old, old); err != nil {
				t.Fatal(err)
			}
			for _, p := range []string{"a/other.bin", "small.txt"} {
				if err := os.WriteFile(filepath.Join(target, p), []byte("older"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			damageChunk(t, e.cfg, created.ID, "big.bin")
			damageChunk(t, e.cfg, created.ID, odd)

			out, errOut, code := e.run(t, "backup", "restore", created.ID, target)
			if code != exitPartial {
				t.Errorf("restore of a damaged backup: exit %d, want %d\n%s\n%s", code, exitPartial, out, errOut)
			}
			for _, want := range []string{"2 entries not restored", "\n    big.bin: chunk ", `"odd\tname.txt": chunk `, "checksum mismatch"} {
				if !strings.Contains(out, want) {
					t.Errorf("summary lacks %q:\n%s", want, out)
				}
			}
			fi, err := os.Stat(bigPath)
			if got, _ := os.ReadFile(bigPath); !bytes.Equal(got, big) || err != nil || !fi.ModTime().Equal(old) {
				t.Errorf("big.bin changed: %d bytes, %v", len(got), err)
			}
			for p, want := range map[string][]byte{"a/other.bin": files["a/other.bin"], "small.txt": files["small.txt"], odd: files[odd]} {
				if got, err := os.ReadFile(filepath.Join(target, p)); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes, %v; want the backup's %d", p, len(got), err, len(want))
				}
			}

			out, _, code = e.run(t, "--json", "backup", "restore", created.ID, target)
			var st struct {
				Files  int `json:"files"`
				Failed []struct {
					Path  string `json:"path"`
					Error string `json:"error"`
				} `json:"failed"`
			}
			if err := json.Unmarshal([]byte(out), &st); err != nil || code != exitPartial {
				t.Fatalf("restore --json: exit %d, %v\n%s", code, err, out)
			}
			if st.Files != 2 || len(st.Failed) != 2 || st.Failed[0].Path != "big.bin" || st.Failed[1].Path != odd ||
				!strings.Contains(st.Failed[0].Error, "checksum mismatch") {
				t.Errorf("restore --json = %+v", st)
			}
			ents, _ := os.ReadDir(target)
			for _, d := range ents {
				if strings.HasPrefix(d.Name(), ".ferry-restore-") {
					t.Errorf("temporary file left: %s", d.Name())
				}
			}
		})
	}
}
