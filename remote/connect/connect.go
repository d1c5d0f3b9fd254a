// Package connect opens the Store a configured location names: a local
// path, or REMOTE:prefix on a remote of the configuration. It is the one
// place that knows every Store implementation.
package connect

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/ferrysync/ferry/config"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/local"
	"github.com/ferrysync/ferry/remote/s3"
)

// Open opens the store for loc. A local directory must exist; an S3 bucket
// must exist and answer.
func Open(ctx context.Context, cfg *config.Config, loc config.Location) (remote.Store, error) {
	if loc.IsLocal() {
		s, err := local.New(loc.Path)
		if err != nil {
			return nil, err // names the path already
		}
		return s, nil
	}
	r, ok := cfg.Remotes[loc.Remote]
	if !ok {
		return nil, fmt.Errorf("%s: no remote named %q in %s", loc, loc.Remote, cfg.File)
	}
	return OpenRemote(ctx, cfg, r, loc.Prefix())
}

// OpenRemote opens prefix (as from Location.Prefix: "" or ending in "/") on
// a configured remote.
func OpenRemote(ctx context.Context, cfg *config.Config, r *config.Remote, prefix string) (remote.Store, error) {
	if err := remote.ValidatePrefix(prefix); err != nil {
		return nil, fmt.Errorf("remote %s: %w", r.Name, err)
	}
	switch r.Type {
	case config.RemoteLocal:
		dir := filepath.Join(r.Path, filepath.FromSlash(prefix))
		s, err := local.New(dir)
		if err != nil {
			return nil, fmt.Errorf("remote %s: %w", r.Name, err)
		}
		return s, nil
	case config.RemoteS3:
		sc := s3.Config{
			Endpoint: r.Endpoint,
			Bucket:   r.Bucket,
			Prefix:   r.Prefix + prefix,
			Region:   r.Region,
			TLS:      r.TLS,
			PartSize: int64(r.PartSize),
		}
		if c, ok := cfg.Credentials[r.Credential]; ok {
			sc.AccessKey = c.AccessKey
			sc.SecretKey = c.SecretKey.Reveal()
		}
		s, err := s3.New(ctx, sc)
		if err != nil {
			return nil, fmt.Errorf("remote %s: %w", r.Name, err)
		}
		return s, nil
	}
	return nil, fmt.Errorf("remote %s: unknown type %q (valid: local, s3)", r.Name, r.Type)
}
