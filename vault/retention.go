package vault

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// Keep says which backups retention keeps: the Last newest, and the newest
// of each of the last Daily days, Weekly ISO weeks and Monthly months that
// have a backup. A backup kept by any rule is kept. All zero keeps every
// backup (config.Keep has the same fields).
type Keep struct {
	Last    int
	Daily   int
	Weekly  int
	Monthly int
}

// Dated is a backup as retention sees it: its id and when it was made (in
// the time zone whose days, weeks and months count).
type Dated struct {
	ID   string
	Time time.Time
}

// Retain applies keep to backups (any order) and returns the ids to
// delete, oldest first. It is a pure function.
func Retain(backups []Dated, keep Keep) []string {
	if keep.Last <= 0 && keep.Daily <= 0 && keep.Weekly <= 0 && keep.Monthly <= 0 {
		return nil
	}
	sorted := slices.Clone(backups)
	// Newest first; ties broken by id so the result does not depend on the
	// input order.
	slices.SortFunc(sorted, func(a, b Dated) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		if a.ID > b.ID {
			return -1
		}
		if a.ID < b.ID {
			return 1
		}
		return 0
	})
	kept := make([]bool, len(sorted))
	for i := range sorted {
		if i < keep.Last {
			kept[i] = true
		}
	}
	bucketRule := func(n int, bucket func(time.Time) int) {
		last, have := 0, false
		for i, b := range sorted {
			if n <= 0 {
				return
			}
			k := bucket(b.Time)
			if have && k == last {
				continue
			}
			last, have = k, true
			kept[i] = true
			n--
		}
	}
	bucketRule(keep.Daily, func(t time.Time) int { y, m, d := t.Date(); return y*10000 + int(m)*100 + d })
	bucketRule(keep.Weekly, func(t time.Time) int { y, w := t.ISOWeek(); return y*100 + w })
	bucketRule(keep.Monthly, func(t time.Time) int { y, m, _ := t.Date(); return y*100 + int(m) })

	var out []string
	for i := len(sorted) - 1; i >= 0; i-- {
		if !kept[i] {
			out = append(out, sorted[i].ID)
		}
	}
	return out
}

// RetainReplicas applies a replication policy's keep (count newest, and
// those younger than days) to replicas and returns the ids to delete,
// oldest first. A replica is kept when either rule keeps it; 0 means no
// limit of that kind, and both 0 keeps every replica.
func RetainReplicas(replicas []Dated, count, days int, now time.Time) []string {
	if count <= 0 && days <= 0 {
		return nil
	}
	sorted := slices.Clone(replicas)
	slices.SortFunc(sorted, func(a, b Dated) int { return b.Time.Compare(a.Time) })
	var out []string
	for i := len(sorted) - 1; i >= 0; i-- {
		r := sorted[i]
		byCount := count > 0 && i < count
		byAge := days > 0 && now.Sub(r.Time) < time.Duration(days)*24*time.Hour
		if !byCount && !byAge {
			out = append(out, r.ID)
		}
	}
	return out
}

// ApplyRetention deletes (see Delete) the backups of the vault that keep
// does not keep, among the available backups for which match returns true
// (nil: every available backup that is not a replica). Days, weeks and
// months are those of the local time zone. It returns the ids deleted, or
// with dryRun the ids it would delete. A policy passes a match for its own
// source and host, so that each source keeps its own history.
func (v *Vault) ApplyRetention(ctx context.Context, keep Keep, match func(*Manifest) bool, dryRun bool) ([]string, error) {
	if match == nil {
		match = func(m *Manifest) bool { return !m.IsReplica() }
	}
	ms, err := v.Backups(ctx)
	if err != nil {
		return nil, err
	}
	var dated []Dated
	for _, m := range ms {
		if m.Status == StatusAvailable && match(m) {
			dated = append(dated, Dated{ID: m.ID, Time: m.Started.Local()})
		}
	}
	ids := Retain(dated, keep)
	if dryRun {
		return ids, nil
	}
	for i, id := range ids {
		if err := v.Delete(ctx, id); err != nil {
			return ids[:i], fmt.Errorf("retention in vault %s: %w", v.name, err)
		}
	}
	return ids, nil
}

// ApplyReplicaRetention deletes the replicas of the vault that a
// replication policy's keep (count newest, and those whose backup is younger than days)
// does not keep, among those match accepts (nil: every available replica).
// It returns the ids deleted, or with dryRun those it would delete.
func (v *Vault) ApplyReplicaRetention(ctx context.Context, count, days int, match func(*Manifest) bool, now time.Time, dryRun bool) ([]string, error) {
	if match == nil {
		match = (*Manifest).IsReplica
	}
	ms, err := v.Backups(ctx)
	if err != nil {
		return nil, err
	}
	var dated []Dated
	for _, m := range ms {
		if m.Status == StatusAvailable && m.IsReplica() && match(m) {
			dated = append(dated, Dated{ID: m.ID, Time: m.Started})
		}
	}
	ids := RetainReplicas(dated, count, days, now)
	if dryRun {
		return ids, nil
	}
	for i, id := range ids {
		if err := v.Delete(ctx, id); err != nil {
			return ids[:i], fmt.Errorf("replica retention in vault %s: %w", v.name, err)
		}
	}
	return ids, nil
}
