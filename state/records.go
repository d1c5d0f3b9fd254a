package state

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dgraph-io/badger/v4"
)

// Generic records: small JSON documents in a namespace, for the parts of
// Ferry that need a few thousand records of their own kind (the changelist
// ledger, the backup catalog, replication records, a mount's listing
// cache) without a typed API here. Namespaces in use are listed in doc.go.

// PutRecord stores v, encoded as JSON, under ns and key, replacing what
// was there.
func (db *DB) PutRecord(ns, k string, v any) error {
	if err := checkRecord(ns, k); err != nil {
		return fmt.Errorf("put record: %w", err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("put record %s/%s: %w", ns, k, err)
	}
	if err := db.update(func(txn *badger.Txn) error { return txn.Set(recordKey(ns, k), raw) }); err != nil {
		return fmt.Errorf("put record %s/%s: %w", ns, k, err)
	}
	return nil
}

// CreateRecord stores v under ns and key only if nothing is stored there
// yet, atomically: of several callers racing for one key exactly one gets
// created == true. For claims (e.g. "this changelist is being processed").
func (db *DB) CreateRecord(ns, k string, v any) (created bool, err error) {
	if err := checkRecord(ns, k); err != nil {
		return false, fmt.Errorf("create record: %w", err)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return false, fmt.Errorf("create record %s/%s: %w", ns, k, err)
	}
	err = db.update(func(txn *badger.Txn) error {
		created = false
		_, err := txn.Get(recordKey(ns, k))
		if err == nil {
			return nil
		}
		if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		created = true
		return txn.Set(recordKey(ns, k), raw)
	})
	if err != nil {
		return false, fmt.Errorf("create record %s/%s: %w", ns, k, err)
	}
	return created, nil
}

// GetRecord decodes the record under ns and key into v (as json.Unmarshal
// does); found is false, and v untouched, when there is none.
func (db *DB) GetRecord(ns, k string, v any) (found bool, err error) {
	if err := checkRecord(ns, k); err != nil {
		return false, fmt.Errorf("get record: %w", err)
	}
	err = db.view(func(txn *badger.Txn) error {
		var err error
		found, err = get(txn, recordKey(ns, k), func(raw []byte) error { return json.Unmarshal(raw, v) })
		return err
	})
	if err != nil {
		return false, fmt.Errorf("get record %s/%s: %w", ns, k, err)
	}
	return found, nil
}

// DeleteRecord removes the record under ns and key. Deleting what is
// absent is not an error.
func (db *DB) DeleteRecord(ns, k string) error {
	if err := checkRecord(ns, k); err != nil {
		return fmt.Errorf("delete record: %w", err)
	}
	if err := db.update(func(txn *badger.Txn) error { return txn.Delete(recordKey(ns, k)) }); err != nil {
		return fmt.Errorf("delete record %s/%s: %w", ns, k, err)
	}
	return nil
}

// IterateRecords calls fn with the key and raw JSON of every record in ns
// whose key starts with prefix, in byte-wise key order. raw is fn's to
// keep. It stops and returns fn's error as-is when fn returns one; fn may
// write to the database.
func (db *DB) IterateRecords(ns, prefix string, fn func(key string, raw []byte) error) error {
	if err := checkName("record namespace", ns); err != nil {
		return fmt.Errorf("iterate records: %w", err)
	}
	p := withSep(pRecord, ns)
	start := len(p)
	p = append(p, prefix...)
	err := db.scan(p, false, false, func(k, v []byte) error {
		return callerErr(fn(string(k[start:]), v))
	})
	return finish("iterate records of "+ns, err)
}

func checkRecord(ns, k string) error {
	if err := checkName("record namespace", ns); err != nil {
		return err
	}
	return checkName("record key", k)
}
