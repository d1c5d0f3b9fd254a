package s3

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ferrysync/ferry/remote"
)

// Through remote.ResumablePutter, a hash given to InitUpload is recorded
// from the start: CompleteUpload needs no copy of the object onto itself,
// and content that hashes to anything else leaves no object.
func TestResumableHashGivenAtStart(t *testing.T) {
	t.Parallel()
	s, _, _ := newTestStore(t, "h/")
	content := randomBytes(7, testPartSize+MiB)
	p1, p2 := content[:testPartSize], content[testPartSize:]
	mtime := time.Unix(1700000000, 0)
	var rp remote.ResumablePutter = s

	upload := func(key, announced string) (remote.ObjectInfo, error) {
		t.Helper()
		id, err := rp.InitUpload(t.Context(), key, remote.PutMeta{ModTime: mtime, SHA256: announced})
		if err != nil {
			t.Fatal(err)
		}
		var parts []remote.Part
		for i, p := range [][]byte{p1, p2} {
			part, err := rp.UploadPart(t.Context(), key, id, i+1, bytes.NewBuffer(p), int64(len(p)), "")
			if err != nil {
				t.Fatal(err)
			}
			parts = append(parts, part)
		}
		return rp.CompleteUpload(t.Context(), key, id, parts, remote.PutMeta{ModTime: mtime, SHA256: hexSHA(content)})
	}

	info, err := upload("same", hexSHA(content))
	if err != nil {
		t.Fatalf("CompleteUpload: %v", err)
	}
	stat, err := s.Stat(t.Context(), "same")
	if err != nil || stat.SHA256 != hexSHA(content) || stat.ETag != info.ETag {
		t.Errorf("Stat = %+v, %v; want the sha256 recorded and the ETag of the completed upload %q", stat, err, info.ETag)
	}
	if !strings.HasSuffix(strings.Trim(stat.ETag, `"`), "-2") {
		t.Errorf("ETag %q is not a two-part upload's: the object was copied onto itself", stat.ETag)
	}

	_, err = upload("changed", hexSHA(p1))
	if !errors.Is(err, remote.ErrChecksum) {
		t.Fatalf("CompleteUpload of content other than announced: %v; want ErrChecksum", err)
	}
	if _, err := s.Stat(t.Context(), "changed"); !errors.Is(err, remote.ErrNotExist) {
		t.Errorf("Stat after the refused upload: %v; want ErrNotExist", err)
	}
}
