package fusefs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote/local"
	"github.com/ferrysync/ferry/remote/s3"
	"github.com/ferrysync/ferry/state"
	"github.com/ferrysync/ferry/syncer"
)

// A file written through a remote mount is an ordinary object: a plain S3
// client reads the right bytes with rclone/s3fs-style mtime and sha256
// metadata, and a ferry sync of the bucket copies it back out intact.
func TestMountedWriteReadableByS3ClientAndSync(t *testing.T) {
	needFUSE(t)
	srv := testenv.SharedMinIO(t)
	bucket := srv.NewBucket(t)
	store, err := s3.New(context.Background(), s3.Config{Endpoint: srv.Endpoint, Bucket: bucket, Region: srv.Region,
		TLS: srv.TLS, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: s3.MinPartSize})
	if err != nil {
		t.Fatal(err)
	}
	mp, _ := mountTest(t, store, Options{})

	content := bytes.Repeat([]byte("written through the mount\n"), 300_000) // ~7.8 MiB: two parts
	sum := sha256.Sum256(content)
	want := hex.EncodeToString(sum[:])
	mtime := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	path := filepath.Join(mp, "docs", "report.txt")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}

	// A plain S3 client.
	c, err := minio.New(srv.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		Secure: srv.TLS, Region: srv.Region})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := c.GetObject(t.Context(), bucket, "docs/report.txt", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, content) {
		t.Fatalf("a plain S3 client read %d bytes, not the %d written", len(got), len(content))
	}
	info, err := c.StatObject(t.Context(), bucket, "docs/report.txt", minio.StatObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if info.UserMetadata["Sha256"] != want {
		t.Errorf("x-amz-meta-sha256 = %q, want %s (metadata %v)", info.UserMetadata["Sha256"], want, info.UserMetadata)
	}
	secs, err := strconv.ParseFloat(info.UserMetadata["Mtime"], 64)
	if err != nil || int64(secs) != mtime.Unix() {
		t.Errorf("x-amz-meta-mtime = %q, want %d", info.UserMetadata["Mtime"], mtime.Unix())
	}

	// A sync of the bucket back to a directory.
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	outDir := t.TempDir()
	out, err := local.New(outDir)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	job, err := (&syncer.Engine{DB: db}).Run(t.Context(), &syncer.Plan{Name: "back", Source: store, Dest: out}, syncer.RunOptions{})
	if err != nil || job.Status != state.JobCompleted || job.Counters.FilesTransferred != 1 {
		t.Fatalf("sync back: %v, job %+v", err, job)
	}
	synced, err := os.ReadFile(filepath.Join(outDir, "docs", "report.txt"))
	if err != nil || !bytes.Equal(synced, content) {
		t.Fatalf("synced copy: %v, %d bytes", err, len(synced))
	}
	if fi, err := os.Stat(filepath.Join(outDir, "docs", "report.txt")); err != nil || !fi.ModTime().Equal(mtime) {
		t.Errorf("synced copy mtime %v, want %v (%v)", fi.ModTime(), mtime, err)
	}
}
