package onceflow_test

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/onceflow/onceflow"

// allowed is the import policy: for every package of the module (by path
// relative to the module root), the non-standard-library packages its
// non-test files may import. Imports point one way: the root vocabulary
// imports nothing of the module; stage and retry only the root; dedup
// implements the pipeline's Store without importing pipeline; the pipeline
// never imports bbolt; only tools and examples assemble everything.
// Changing this table is a design decision: say why in the commit.
var allowed = map[string][]string{
	".":        {},
	"stage":    {module, module + "/retry", "github.com/cespare/xxhash/v2"},
	"retry":    {},
	"pipeline": {module, module + "/stage", module + "/retry"},
	"dedup": {module, "go.etcd.io/bbolt", "go.etcd.io/bbolt/errors",
		"github.com/bits-and-blooms/bloom/v3", "github.com/dgraph-io/ristretto/v2", "github.com/cespare/xxhash/v2"},
	"proptest": {module, module + "/pipeline", module + "/stage", module + "/dedup", module + "/retry",
		"github.com/leanovate/gopter", "github.com/leanovate/gopter/gen", "github.com/leanovate/gopter/prop",
		"github.com/leanovate/gopter/commands"},
	"cmd/onceflow": {module, module + "/pipeline", module + "/stage", module + "/dedup", module + "/retry",
		module + "/internal/jsonl", "github.com/schollz/progressbar/v3", "golang.org/x/term"},
	"examples/quickstart":  {module, module + "/pipeline", module + "/dedup", module + "/stage"},
	"internal/jsonl":       {module},
	"internal/crashtest":   {},
	"internal/reliability": {},
}

// TestImportPolicy fails on an import the table does not allow, and on a
// package of the module missing from the table.
func TestImportPolicy(t *testing.T) {
	seen := map[string]bool{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != "." && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
			return filepath.SkipDir
		}
		if path != "." {
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // a nested module (bench/) has its own policy
			}
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		rel := filepath.ToSlash(path)
		seen[rel] = true
		allow, ok := allowed[rel]
		if !ok {
			t.Errorf("package %q (%s) is missing from the import policy table in deps_test.go", rel, pkg.Name)
			return nil
		}
		for _, imp := range pkg.Imports {
			if isStd(imp) {
				continue
			}
			if !slices.Contains(allow, imp) {
				t.Errorf("package %q imports %q, which the policy does not allow", rel, imp)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !seen["."] || !seen["pipeline"] {
		t.Fatalf("walk found %v: the policy test is not looking at the module", seen)
	}
}

// isStd reports whether imp is a standard-library package: its first path
// element has no dot.
func isStd(imp string) bool {
	first, _, _ := strings.Cut(imp, "/")
	return !strings.Contains(first, ".")
}
