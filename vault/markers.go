package vault

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// Running markers: running/<kind>-<id>.json, written when a backup, a
// replication into the vault or a prune starts, rewritten every heartbeat
// while it runs, and removed when it ends. A marker whose heartbeat is
// older than staleAfter, or one from this host whose process is gone,
// belongs to a process that died; it is ignored, and prune removes it.
const (
	defaultStaleAfter = 30 * time.Minute
	defaultHeartbeat  = 5 * time.Minute
	defaultPollEvery  = 2 * time.Second
)

// Marker is the content of a running marker.
type Marker struct {
	Kind      string    `json:"kind"` // backup, replicate or prune
	ID        string    `json:"id"`
	Host      string    `json:"host"`
	PID       int       `json:"pid"`
	Started   time.Time `json:"started"`
	Heartbeat time.Time `json:"heartbeat"`
}

func markerKey(kind, id string) string { return runningDir + kind + "-" + id + markerSuffix }

// markers lists the vault's running markers. Unreadable or malformed
// markers are returned with a zero Heartbeat (so they count as stale).
func (v *Vault) markers(ctx context.Context) (map[string]Marker, error) {
	var keys []string
	err := v.store.List(ctx, runningDir, func(oi remote.ObjectInfo) error {
		if oi.SkipReason == "" && strings.HasSuffix(oi.Key, markerSuffix) {
			keys = append(keys, oi.Key)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list running markers of vault %s: %w", v.name, err)
	}
	out := make(map[string]Marker, len(keys))
	for _, k := range keys {
		data, err := getDoc(ctx, v.store, k)
		if errors.Is(err, remote.ErrNotExist) {
			continue // ended since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("read running marker: %w", err)
		}
		var m Marker
		if err := decodeStrict(k, data, &m); err != nil {
			v.log.Warn("malformed running marker", slog.String("vault", v.name), slog.String("key", k), slog.Any("err", err))
		}
		out[k] = m
	}
	return out, nil
}

// live reports whether a marker's process may still run: its heartbeat is
// recent, and, when it ran on this host, its process exists.
func (v *Vault) live(m Marker) bool {
	if m.Host == hostname() && !processAlive(m.PID) {
		return false
	}
	return v.now().Sub(m.Heartbeat) < v.staleAfter
}

// session is a running marker this process holds.
type session struct {
	v      *Vault
	key    string
	marker Marker
	stop   chan struct{}
	done   sync.WaitGroup
}

// begin writes a running marker of kind and starts its heartbeat. The
// caller must call end.
func (v *Vault) begin(ctx context.Context, kind, id string) (*session, error) {
	now := v.now().UTC()
	s := &session{
		v: v, key: markerKey(kind, id), stop: make(chan struct{}),
		marker: Marker{Kind: kind, ID: id, Host: hostname(), PID: os.Getpid(), Started: now, Heartbeat: now},
	}
	if err := putDoc(ctx, v.store, s.key, encodeJSON(s.marker)); err != nil {
		return nil, fmt.Errorf("vault %s: write running marker: %w", v.name, err)
	}
	s.done.Add(1)
	go s.beat(ctx)
	return s, nil
}

func (s *session) beat(ctx context.Context) {
	defer s.done.Done()
	t := time.NewTicker(s.v.heartbeat)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
			s.marker.Heartbeat = s.v.now().UTC()
			if err := putDoc(ctx, s.v.store, s.key, encodeJSON(s.marker)); err != nil && ctx.Err() == nil {
				s.v.log.Warn("refresh running marker", slog.String("vault", s.v.name), slog.String("key", s.key), slog.Any("err", err))
			}
		}
	}
}

// end stops the heartbeat and removes the marker, even when ctx was
// canceled.
func (s *session) end(ctx context.Context) {
	close(s.stop)
	s.done.Wait()
	dctx, cancel := detach(ctx)
	defer cancel()
	if err := s.v.store.Delete(dctx, s.key); err != nil {
		s.v.log.Warn("remove running marker", slog.String("vault", s.v.name), slog.String("key", s.key), slog.Any("err", err))
	}
}

// beginWriter starts a writer (backup or replication into the vault): it
// writes its marker and then waits while a live prune marker exists, so
// that the packs it lists afterwards stay. See the package doc.
func (v *Vault) beginWriter(ctx context.Context, kind, id string) (*session, error) {
	s, err := v.begin(ctx, kind, id)
	if err != nil {
		return nil, err
	}
	logged := false
	for {
		ms, err := v.markers(ctx)
		if err != nil {
			s.end(ctx)
			return nil, err
		}
		prune := ""
		for k, m := range ms {
			if m.Kind == markerKindPrune && v.live(m) {
				prune = k
			}
		}
		if prune == "" {
			return s, nil
		}
		if !logged {
			v.log.Info("waiting for a prune of the vault to end", slog.String("vault", v.name), slog.String("marker", prune))
			logged = true
		}
		select {
		case <-ctx.Done():
			s.end(ctx)
			return nil, fmt.Errorf("vault %s: waiting for prune (%s) to end: %w", v.name, prune, ctx.Err())
		case <-time.After(v.pollEvery):
		}
	}
}

// Running returns the live running markers of the vault (backups,
// replications into it, prunes).
func (v *Vault) Running(ctx context.Context) ([]Marker, error) {
	ms, err := v.markers(ctx)
	if err != nil {
		return nil, err
	}
	var out []Marker
	for _, m := range ms {
		if v.live(m) {
			out = append(out, m)
		}
	}
	return out, nil
}
