package conf

import (
	"os"
	"testing"
)

// TestOptionsDocCurrent fails when docs/options.md differs from the table;
// `make docs` rewrites it.
func TestOptionsDocCurrent(t *testing.T) {
	got, err := os.ReadFile("../docs/options.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != Markdown() {
		t.Fatal("docs/options.md is stale: run make docs")
	}
}
