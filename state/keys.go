package state

import (
	"encoding/binary"
	"fmt"
	"strings"
	"unicode/utf8"
)

// Key prefixes. Each kind of record lives under its own first byte; see
// doc.go for the full layout.
const (
	pMeta     = 'm' // m<name>                                  -> meta values
	pFile     = 'f' // f<plan>\0<path>                           -> FileEntry (binary)
	pJob      = 'j' // j<jobID>                                  -> Job (JSON)
	pJobPlan  = 'J' // J<plan>\0<jobID>                          -> empty (jobs by plan)
	pList     = 'l' // l<jobID>\0<kind><seq:8 BE>                -> FileRecord (binary)
	pUpload   = 'u' // u<plan>\0<key>                            -> Upload without parts (JSON)
	pPart     = 'p' // p<plan>\0<key>\0<uploadID>\0<part:4 BE>   -> UploadPart (binary)
	pRecord   = 'r' // r<ns>\0<key>                              -> caller's JSON
	separator = 0
)

// Meta keys.
var (
	keySchema   = []byte{pMeta, 's', 'c', 'h', 'e', 'm', 'a'}
	keyListSeq  = []byte{pMeta, 's', 'e', 'q', '.', 'l', 'i', 's', 't', 's'}
	schemaValue = []byte{1}
)

// checkName validates a plan name, job id, namespace, path or key that
// becomes part of a database key. what names the thing for the message.
// A NUL would break the key layout (it is the separator); the other rules
// keep keys printable in error messages.
func checkName(what, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: %s is empty", ErrInvalid, what)
	case strings.IndexByte(s, separator) >= 0:
		return fmt.Errorf("%w: %s %q contains a NUL byte", ErrInvalid, what, s)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s %q is not valid UTF-8", ErrInvalid, what, s)
	}
	return nil
}

// key builds prefix byte + parts joined by the separator.
func key(prefix byte, parts ...string) []byte {
	n := 1
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n+8)
	k = append(k, prefix)
	for i, p := range parts {
		if i > 0 {
			k = append(k, separator)
		}
		k = append(k, p...)
	}
	return k
}

// withSep returns key(prefix, parts...) followed by one separator: the
// prefix under which everything below the given parts lives.
func withSep(prefix byte, parts ...string) []byte {
	return append(key(prefix, parts...), separator)
}

func fileKey(plan, path string) []byte { return key(pFile, plan, path) }

func jobKey(id string) []byte { return key(pJob, id) }

func jobPlanKey(plan, id string) []byte { return key(pJobPlan, plan, id) }

func listPrefix(jobID string, kind byte) []byte {
	return append(withSep(pList, jobID), kind)
}

func listKey(jobID string, kind byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(listPrefix(jobID, kind), seq)
}

func uploadKey(plan, objKey string) []byte { return key(pUpload, plan, objKey) }

func partPrefix(plan, objKey, uploadID string) []byte {
	return withSep(pPart, plan, objKey, uploadID)
}

func partKey(plan, objKey, uploadID string, number int) []byte {
	return binary.BigEndian.AppendUint32(partPrefix(plan, objKey, uploadID), uint32(number))
}

func recordKey(ns, k string) []byte { return key(pRecord, ns, k) }

// listKindByte maps a ListKind to its one-byte code in keys.
func listKindByte(k ListKind) (byte, error) {
	switch k {
	case ListSuccess:
		return 's', nil
	case ListSkipped:
		return 'k', nil
	case ListFailed:
		return 'f', nil
	}
	return 0, fmt.Errorf("%w: list kind %q (valid: %s, %s, %s)", ErrInvalid, k, ListSuccess, ListSkipped, ListFailed)
}

// prefixEnd returns the smallest key greater than every key starting with
// prefix, or nil if there is none (prefix is all 0xff).
func prefixEnd(prefix []byte) []byte {
	end := append([]byte(nil), prefix...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}
