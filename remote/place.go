package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Place says where a store's objects really are, so that two stores can be
// compared by what they are rather than by the names a configuration gives
// them: a local directory by its path with every symlink resolved, an S3
// store by its endpoint, bucket and prefix.
type Place struct {
	// Kind is "local", "s3" or "mem".
	Kind string
	// Server names the service holding the objects: for "s3" the endpoint
	// as lower-case host:port (the scheme's default port filled in); for
	// "mem" the store instance. "" for "local".
	Server string
	// Bucket is the S3 bucket; "" otherwise.
	Bucket string
	// Path is the root: for "local" an absolute, cleaned path with its
	// symlinks resolved; for "s3" and "mem" a key prefix, "" or ending in
	// "/".
	Path string
}

// Placer is a Store that can say where its objects are. Every store of
// Ferry's is one; the sync engine refuses a job whose source and
// destination overlap (see CheckOverlap).
type Placer interface {
	// Place resolves the store's root now (a local directory's symlinks
	// can change between two calls).
	Place() (Place, error)
}

// String describes the place for messages: "/srv/data",
// "s3://host:9000/bucket/prefix/".
func (p Place) String() string {
	switch p.Kind {
	case "local":
		return p.Path
	case "s3":
		return "s3://" + p.Server + "/" + p.Bucket + "/" + p.Path
	}
	return p.Kind + ":" + p.Server + "/" + p.Path
}

// Contains reports whether q is p or lies inside it.
func (p Place) Contains(q Place) bool {
	if p.Kind != q.Kind || p.Server != q.Server || p.Bucket != q.Bucket {
		return false
	}
	if p.Kind == "local" {
		if p.Path == q.Path || p.Path == "/" {
			return true
		}
		return strings.HasPrefix(q.Path, p.Path+"/")
	}
	return strings.HasPrefix(q.Path, p.Path)
}

// ErrOverlap: a sync's source and destination overlap in a way that would
// copy the destination into itself or delete the source.
var ErrOverlap = errors.New("source and destination overlap")

// CheckOverlap returns an error wrapping ErrOverlap when a sync from src to
// dst must be refused: always when dst is src or lies inside it (every run
// would copy its own copies again), and, when deletes is set, also when src
// lies inside dst (the delete pass would remove the source itself).
func CheckOverlap(src, dst Place, deletes bool) error {
	switch {
	case src.Contains(dst):
		return fmt.Errorf("%w: the destination %s is the source %s or lies inside it; choose a destination outside the source",
			ErrOverlap, dst, src)
	case deletes && dst.Contains(src):
		return fmt.Errorf("%w: the source %s lies inside the destination %s, so deleting what the destination has and the source lacks would delete the source itself; choose a destination that does not contain the source, or turn deletes off",
			ErrOverlap, src, dst)
	}
	return nil
}

// LocalPlace returns the Place of the local directory dir, which need not
// exist yet: the longest part of it that exists is resolved (symlinks
// followed) and the rest appended.
func LocalPlace(dir string) (Place, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return Place{}, fmt.Errorf("resolve %s: %w", dir, err)
	}
	var rest []string
	p := abs
	for {
		resolved, err := filepath.EvalSymlinks(p)
		if err == nil {
			return Place{Kind: "local", Path: filepath.Join(append([]string{resolved}, rest...)...)}, nil
		}
		parent := filepath.Dir(p)
		if !errors.Is(err, fs.ErrNotExist) || parent == p {
			return Place{}, fmt.Errorf("resolve %s: %w", dir, err)
		}
		// A dangling symlink is not a missing directory: where it points
		// is where the files would go.
		if _, lerr := os.Lstat(p); lerr == nil {
			return Place{}, fmt.Errorf("resolve %s: %s is a symlink whose target does not exist", dir, p)
		}
		rest = append([]string{filepath.Base(p)}, rest...)
		p = parent
	}
}

// S3Place returns the Place of prefix ("" or ending in "/") in bucket on
// the S3 endpoint ("host" or "host:port"; tls picks the default port).
func S3Place(endpoint string, tls bool, bucket, prefix string) Place {
	host, port, err := net.SplitHostPort(endpoint)
	if err != nil {
		host, port = strings.Trim(endpoint, "[]"), "80"
		if tls {
			port = "443"
		}
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return Place{Kind: "s3", Server: net.JoinHostPort(host, port), Bucket: bucket, Path: prefix}
}
