package s3

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/ferrysync/ferry/remote"
)

// List streams the objects under prefix in key order (S3 lists in byte-wise
// UTF-8 order), a page of up to 1,000 at a time.
//
// Metadata: listings ask for each object's user metadata, a MinIO extension
// (and for the restore status of archived objects, an AWS one). From MinIO,
// entries carry the same mtime and SHA-256 as Stat. From other servers they
// carry the write time (whole seconds) as ModTime and SHA256 ""; Stat the
// object for the recorded values. A server that refuses the extensions
// outright gets plain listings from then on.
//
// Skipped silently: zero-byte objects whose name ends in "/" (directory
// markers made by consoles and s3fs). Passed with SkipReason: names that
// break the key rules (e.g. "a//b", "x/../y", a non-empty "dir/"), and
// objects in the archive storage classes GLACIER and DEEP_ARCHIVE that have
// not been restored. Objects archived by Intelligent-Tiering's archive tiers
// list as INTELLIGENT_TIERING and fail when read.
func (s *Store) List(ctx context.Context, prefix string, fn func(remote.ObjectInfo) error) error {
	return s.list(ctx, prefix, true, fn)
}

// ListPlain is List without the metadata extension (remote.PlainLister):
// entries carry key, size, ETag and the write time, SHA256 "". On MinIO it
// costs the server about half as much as List.
func (s *Store) ListPlain(ctx context.Context, prefix string, fn func(remote.ObjectInfo) error) error {
	return s.list(ctx, prefix, false, fn)
}

func (s *Store) list(ctx context.Context, prefix string, meta bool, fn func(remote.ObjectInfo) error) error {
	if err := remote.ValidatePrefix(prefix); err != nil {
		return err
	}
	opts := minio.ListObjectsOptions{
		Prefix:            s.prefix + prefix,
		Recursive:         true,
		WithMetadata:      meta,
		WithRestoreStatus: true,
		FetchOwner:        new(false),
		MaxKeys:           s.pageSize,
	}
	for obj := range s.listObjects(ctx, opts) {
		if obj.Err != nil {
			return fmt.Errorf("s3 list %q: %w", prefix, translate(obj.Err))
		}
		rel, ok := strings.CutPrefix(obj.Key, s.prefix)
		if !ok {
			continue
		}
		if strings.HasSuffix(rel, "/") && obj.Size == 0 {
			continue // a directory marker
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(listEntry(rel, obj)); err != nil {
			return err
		}
	}
	return ctx.Err()
}

// listEntry converts one listed object, relative name rel.
func listEntry(rel string, obj minio.ObjectInfo) remote.ObjectInfo {
	var keyErr *remote.KeyError
	if err := remote.ValidateKey(rel); errors.As(err, &keyErr) {
		return remote.ObjectInfo{
			Key: remote.PrintableKey(rel), Size: obj.Size, ModTime: obj.LastModified, ETag: obj.ETag,
			SkipReason: "name " + keyErr.Reason,
		}
	}
	meta := obj.UserMetadataStripped
	if meta == nil {
		meta = obj.UserMetadata
	}
	mtime, sha := modTimeAndSHA(meta, obj.LastModified)
	info := remote.ObjectInfo{Key: rel, Size: obj.Size, ModTime: mtime, ETag: obj.ETag, SHA256: sha}
	restored := obj.Restore != nil && !obj.Restore.OngoingRestore && obj.Restore.ExpiryTime.After(time.Now())
	info.SkipReason = archiveSkipReason(obj.StorageClass, restored)
	return info
}

// archiveSkipReason returns why an object in storageClass cannot be read
// now, or "" when it can. GLACIER and DEEP_ARCHIVE objects must be restored
// first (GLACIER_IR, instant retrieval, reads normally).
func archiveSkipReason(storageClass string, restored bool) string {
	switch strings.ToUpper(storageClass) {
	case "GLACIER", "DEEP_ARCHIVE":
		if restored {
			return ""
		}
		return "archived storage class " + strings.ToUpper(storageClass) + ": restore it before copying"
	}
	return ""
}

// ListDir lists one level under prefix: the objects directly in it and its
// sub-directories (common prefixes, Info.Key ending in "/"), together in key
// order. The directory marker of prefix itself is left out; names that break
// the key rules come with SkipReason set, as in List. It holds at most one
// listing page (1,000 entries) in memory.
func (s *Store) ListDir(ctx context.Context, prefix string, fn func(remote.DirEntry) error) error {
	if err := remote.ValidatePrefix(prefix); err != nil {
		return err
	}
	opts := minio.ListObjectsOptions{
		Prefix:            s.prefix + prefix,
		WithMetadata:      true,
		WithRestoreStatus: true,
		FetchOwner:        new(false),
		MaxKeys:           s.pageSize,
	}
	// minio-go yields each page's objects, then its common prefixes; both
	// runs are sorted, and pages follow each other in key order. Merging
	// a run of objects with the run of prefixes after it restores the order.
	var objs, dirs []remote.DirEntry
	flush := func() error {
		i, j := 0, 0
		for i < len(objs) || j < len(dirs) {
			var e remote.DirEntry
			if j == len(dirs) || (i < len(objs) && objs[i].Info.Key < dirs[j].Info.Key) {
				e, i = objs[i], i+1
			} else {
				e, j = dirs[j], j+1
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(e); err != nil {
				return err
			}
		}
		objs, dirs = objs[:0], dirs[:0]
		return nil
	}
	for obj := range s.listObjects(ctx, opts) {
		if obj.Err != nil {
			return fmt.Errorf("s3 list directory %q: %w", prefix, translate(obj.Err))
		}
		rel, ok := strings.CutPrefix(obj.Key, s.prefix)
		if !ok || rel == prefix {
			continue // the directory's own marker
		}
		if dir, isDir := strings.CutSuffix(rel, "/"); isDir && obj.ETag == "" && obj.LastModified.IsZero() {
			e := remote.DirEntry{Dir: true, Info: remote.ObjectInfo{Key: rel}}
			var keyErr *remote.KeyError
			if err := remote.ValidateKey(dir); errors.As(err, &keyErr) {
				e.Info.Key = remote.PrintableKey(rel)
				e.Info.SkipReason = "name " + keyErr.Reason
			}
			dirs = append(dirs, e)
			continue
		}
		if len(dirs) > 0 { // a new page begins
			if err := flush(); err != nil {
				return err
			}
		}
		objs = append(objs, remote.DirEntry{Info: listEntry(rel, obj)})
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return flush()
}

// listObjects iterates a listing with opts. When the server refuses the
// first request because of the listing extensions (metadata, restore
// status), it lists again without them and remembers to leave them out.
func (s *Store) listObjects(ctx context.Context, opts minio.ListObjectsOptions) iter.Seq[minio.ObjectInfo] {
	return func(yield func(minio.ObjectInfo) bool) {
		if s.plainList.Load() {
			opts.WithMetadata, opts.WithRestoreStatus = false, false
		}
		first := true
		for obj := range s.client.ListObjectsIter(ctx, s.bucket, opts) {
			if first && obj.Err != nil && opts.WithMetadata && refusesExtension(obj.Err) {
				s.plainList.Store(true)
				opts.WithMetadata, opts.WithRestoreStatus = false, false
				for obj := range s.client.ListObjectsIter(ctx, s.bucket, opts) {
					if !yield(obj) {
						return
					}
				}
				return
			}
			first = false
			if !yield(obj) {
				return
			}
		}
	}
}

// refusesExtension reports an error answer that a server without the
// listing extensions may give for them.
func refusesExtension(err error) bool {
	er, ok := asErrorResponse(err)
	if !ok {
		return false
	}
	switch er.Code {
	case "NotImplemented", "InvalidArgument", "InvalidRequest":
		return true
	}
	return false
}
