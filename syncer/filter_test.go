package syncer

import "testing"

func TestFilter(t *testing.T) {
	tests := []struct {
		name             string
		include, exclude []string
		yes, no          []string
	}{
		{"nil matches all", nil, nil, []string{"a", "b/c"}, nil},
		{"exclude basename at any depth", nil, []string{"*.log"},
			[]string{"a.txt", "logs/a.txt"}, []string{"a.log", "x/y/b.log"}},
		{"include path glob", []string{"photos/**/*.jpg"}, nil,
			[]string{"photos/a.jpg", "photos/2026/11/b.jpg"}, []string{"a.jpg", "photos/a.png", "other/photos/a.jpg"}},
		{"anchored", nil, []string{"/tmp/*"},
			[]string{"a/tmp/x", "tmpx"}, []string{"tmp/x"}},
		{"directory pattern", nil, []string{"cache/"},
			[]string{"cachex/a", "a/cache/b"}, []string{"cache/a", "cache/b/c"}},
		{"braces", []string{"*.{jpg,png}"}, nil, []string{"a.jpg", "d/b.png"}, []string{"c.gif"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := NewFilter(tt.include, tt.exclude)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range tt.yes {
				if !f.Match(k) {
					t.Errorf("Match(%q) = false, want true", k)
				}
			}
			for _, k := range tt.no {
				if f.Match(k) {
					t.Errorf("Match(%q) = true, want false", k)
				}
			}
		})
	}
}

func TestFilterErrors(t *testing.T) {
	if _, err := NewFilter([]string{"a"}, []string{"b"}); err == nil {
		t.Error("include with exclude accepted")
	}
	if _, err := NewFilter([]string{"[abc"}, nil); err == nil {
		t.Error("bad glob accepted")
	}
	if _, err := NewFilter(nil, []string{"  "}); err == nil {
		t.Error("empty pattern accepted")
	}
}
