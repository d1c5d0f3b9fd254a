package changelist

import (
	"os"
	"strings"
	"testing"
)

// Every CSV example in docs/changelist.md parses, with no skipped row.
func TestDocExamples(t *testing.T) {
	data, err := os.ReadFile("../docs/changelist.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(data), "```csv\n")[1:]
	if len(blocks) < 3 {
		t.Fatalf("found %d CSV examples", len(blocks))
	}
	for i, b := range blocks {
		text := b[:strings.Index(b, "```")]
		l, err := Parse(strings.NewReader(text), "example.csv", Options{})
		if err != nil {
			t.Errorf("example %d: %v\n%s", i+1, err, text)
			continue
		}
		if len(l.Skipped) > 0 || len(l.Upserts)+len(l.Deletes) == 0 {
			t.Errorf("example %d: %+v\n%s", i+1, l, text)
		}
	}
}
