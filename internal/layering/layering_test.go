package layering

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/ferrysync/ferry"

// imports returns each package of the module with its (non-test) imports.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkgs[strings.TrimPrefix(f[0], module+"/")] = f[1:]
	}
	if len(pkgs) < 10 {
		t.Fatalf("go list found only %d packages", len(pkgs))
	}
	return pkgs
}

func TestVendorLibrariesStayInTheirPackage(t *testing.T) {
	owners := map[string][]string{
		// bench/putloop is the benchmark's bare minio-go loop, the yardstick.
		"github.com/minio/minio-go/v7":        {"remote/s3", "internal/testenv", "bench/putloop"},
		"github.com/dgraph-io/badger/v4":      {"state"},
		"github.com/fsnotify/fsnotify":        {"changelist"},
		"github.com/hanwen/go-fuse/v2":        {"fusefs"},
		"github.com/coreos/go-systemd/v22":    {"daemon"},
		"github.com/prometheus/client_golang": {"daemon"},
	}
	for pkg, imps := range imports(t) {
		for _, imp := range imps {
			for lib, allowed := range owners {
				if strings.HasPrefix(imp, lib) && !contains(allowed, pkg) {
					t.Errorf("%s imports %s; only %v may", pkg, imp, allowed)
				}
			}
		}
	}
}

func TestDependencyDirection(t *testing.T) {
	// The layer of each package, by its longest matching path prefix. A
	// package may import packages of lower layers, and of its own top-level
	// directory (remote/local imports remote).
	layers := []struct {
		prefix string
		layer  int
	}{
		{"internal", 0}, {"remote", 0}, {"state", 0},
		{"config", 1}, {"remote/connect", 2}, {"changelist", 2},
		{"syncer", 3}, {"vault", 3}, {"fusefs", 4},
		{"daemon", 5}, {"cmd", 6}, {"bench", 7},
	}
	layerOf := func(p string) (int, bool) {
		best, layer := -1, 0
		for _, l := range layers {
			if (p == l.prefix || strings.HasPrefix(p, l.prefix+"/")) && len(l.prefix) > best {
				best, layer = len(l.prefix), l.layer
			}
		}
		return layer, best >= 0
	}
	top := func(p string) string { return strings.SplitN(p, "/", 2)[0] }
	for pkg, imps := range imports(t) {
		from, ok := layerOf(pkg)
		if !ok {
			t.Errorf("package %s is in no known layer; add it to this test and ARCHITECTURE.md", pkg)
			continue
		}
		for _, imp := range imps {
			if !strings.HasPrefix(imp, module+"/") {
				continue
			}
			dep := strings.TrimPrefix(imp, module+"/")
			if top(dep) == top(pkg) || top(dep) == "internal" {
				continue
			}
			if to, _ := layerOf(dep); to >= from {
				t.Errorf("%s (layer %d) imports %s (layer %d): dependencies point down only", pkg, from, dep, to)
			}
		}
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
