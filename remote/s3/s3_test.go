package s3

import (
	"context"
	"os"
	"testing"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/ferrysync/ferry/internal/testenv"
	"github.com/ferrysync/ferry/remote"
	"github.com/ferrysync/ferry/remote/storetest"
)

// testPartSize is the part size of test stores: the smallest S3 allows, so
// that "large" objects of a few MiB cross the multipart threshold.
const testPartSize = MinPartSize

func TestMain(m *testing.M) {
	code := m.Run()
	testenv.StopShared()
	os.Exit(code)
}

// newTestStore returns a Store on a fresh bucket of the shared server, with
// the given prefix.
func newTestStore(t testing.TB, prefix string) (*Store, *testenv.S3Server, string) {
	t.Helper()
	srv := testenv.SharedMinIO(t)
	bucket := srv.NewBucket(t)
	return storeOn(t, srv, bucket, prefix), srv, bucket
}

func storeOn(t testing.TB, srv *testenv.S3Server, bucket, prefix string) *Store {
	t.Helper()
	s, err := New(context.Background(), Config{
		Endpoint:  srv.Endpoint,
		Bucket:    bucket,
		Prefix:    prefix,
		Region:    srv.Region,
		TLS:       srv.TLS,
		AccessKey: srv.AccessKey,
		SecretKey: srv.SecretKey,
		PartSize:  testPartSize,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

// plainClient is a minio-go client for looking at what the store wrote the
// way other tools see it.
func plainClient(t testing.TB, srv *testenv.S3Server) *minio.Client {
	t.Helper()
	c, err := minio.New(srv.Endpoint, &minio.Options{
		Creds:  credentials.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
		Secure: srv.TLS,
		Region: srv.Region,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformance(t *testing.T) {
	opt := storetest.Options{LargeSize: 2*testPartSize + 2*MiB + 12345} // three parts
	if srv := testenv.SharedMinIO(t); srv.External() {
		opt.ListWithoutMeta = true // the endpoint may not be MinIO
	}
	t.Run("bucket-root", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) remote.Store {
			s, _, _ := newTestStore(t, "")
			return s
		}, opt)
	})
	t.Run("prefix-small-pages", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T) remote.Store {
			s, _, _ := newTestStore(t, "some prefix/ä/")
			s.pageSize = 3 // listings cross many page boundaries
			return s
		}, opt)
	})
}
