package vault

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestRetain(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	// Two backups a day from Mon 2024-01-01 to Sun 2024-02-04, plus one in
	// December.
	var bs []Dated
	bs = append(bs, Dated{"dec", at("2023-12-15 12:00")})
	for d := at("2024-01-01 00:00"); d.Before(at("2024-02-05 00:00")); d = d.AddDate(0, 0, 1) {
		bs = append(bs, Dated{d.Format("0102") + "am", d.Add(6 * time.Hour)}, Dated{d.Format("0102") + "pm", d.Add(18 * time.Hour)})
	}
	kept := func(keep Keep) []string {
		del := Retain(bs, keep)
		var out []string
		for _, b := range bs {
			if !slices.Contains(del, b.ID) {
				out = append(out, b.ID)
			}
		}
		slices.Sort(out)
		return out
	}
	tests := []struct {
		name string
		keep Keep
		want []string
	}{
		{"last 3", Keep{Last: 3}, []string{"0203pm", "0204am", "0204pm"}},
		{"daily 3", Keep{Daily: 3}, []string{"0202pm", "0203pm", "0204pm"}},
		{"weekly 2", Keep{Weekly: 2}, []string{"0128pm", "0204pm"}}, // ISO weeks end on Sunday
		{"monthly 3", Keep{Monthly: 3}, []string{"0131pm", "0204pm", "dec"}},
		{"monthly beyond history", Keep{Monthly: 12}, []string{"0131pm", "0204pm", "dec"}},
		{"union", Keep{Last: 1, Daily: 2, Monthly: 2}, []string{"0131pm", "0203pm", "0204pm"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := kept(tc.keep); !slices.Equal(got, tc.want) {
				t.Errorf("kept %v, want %v", got, tc.want)
			}
		})
	}

	if del := Retain(bs, Keep{}); del != nil {
		t.Errorf("empty keep deletes %v", del)
	}
	if del := Retain(nil, Keep{Last: 1}); len(del) != 0 {
		t.Errorf("no backups: %v", del)
	}
	// Deletions come oldest first, and the input order does not matter.
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	a, b := Retain(bs, Keep{Last: 5}), Retain(rev, Keep{Last: 5})
	if !slices.Equal(a, b) || a[0] != "dec" {
		t.Errorf("order: %v vs %v", a[:3], b[:3])
	}
}

func TestRetainReplicas(t *testing.T) {
	now := time.Date(2024, 6, 30, 12, 0, 0, 0, time.UTC)
	var rs []Dated
	for i := range 10 {
		rs = append(rs, Dated{string(rune('a' + i)), now.AddDate(0, 0, -i*3)}) // a newest, j 27 days old
	}
	tests := []struct {
		count, days int
		want        []string
	}{
		{0, 0, nil},
		{3, 0, []string{"j", "i", "h", "g", "f", "e", "d"}},
		{0, 10, []string{"j", "i", "h", "g", "f", "e"}}, // a..d are under 10 days old
		{2, 10, []string{"j", "i", "h", "g", "f", "e"}},
		{6, 10, []string{"j", "i", "h", "g"}},
		{20, 0, nil},
	}
	for _, tc := range tests {
		if got := RetainReplicas(rs, tc.count, tc.days, now); !slices.Equal(got, tc.want) {
			t.Errorf("count %d days %d: delete %v, want %v", tc.count, tc.days, got, tc.want)
		}
	}
}

func TestApplyRetention(t *testing.T) {
	ctx := context.Background()
	a, b, _ := twoClouds(t)
	src := makeSource(t, 1000)
	var ids []string
	for range 3 {
		m, err := a.Create(ctx, src, BackupOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.ID)
		if _, err := Replicate(ctx, a, m.ID, b, ReplicateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	other := makeSource(t, 10)
	mo, err := a.Create(ctx, other, BackupOptions{})
	if err != nil {
		t.Fatal(err)
	}
	bySource := func(m *Manifest) bool { return m.Source == src }
	dry, err := a.ApplyRetention(ctx, Keep{Last: 1}, bySource, true)
	if err != nil || !slices.Equal(dry, ids[:2]) {
		t.Fatalf("dry run = %v, %v; want %v", dry, err, ids[:2])
	}
	if list, _ := a.Backups(ctx); len(list) != 4 {
		t.Fatalf("dry run deleted something: %d backups", len(list))
	}
	got, err := a.ApplyRetention(ctx, Keep{Last: 1}, bySource, false)
	if err != nil || !slices.Equal(got, ids[:2]) {
		t.Fatalf("retention = %v, %v", got, err)
	}
	list, _ := a.Backups(ctx)
	if len(list) != 2 || list[0].ID != ids[2] || list[1].ID != mo.ID {
		t.Errorf("left: %v", list)
	}

	got, err = b.ApplyReplicaRetention(ctx, 2, 0, nil, time.Now(), false)
	if err != nil || !slices.Equal(got, ids[:1]) {
		t.Fatalf("replica retention = %v, %v", got, err)
	}
	if list, _ := b.Backups(ctx); len(list) != 2 {
		t.Errorf("replicas left: %d", len(list))
	}
}
