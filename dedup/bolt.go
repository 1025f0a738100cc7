package dedup

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strconv"
	"sync/atomic"

	onceflow "github.com/onceflow/onceflow"
	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// boltBackend stores a Store's buckets in one bbolt file.
type boltBackend struct {
	db          *bolt.DB
	path        string
	fillPercent float64 // of outcome buckets; 0 keeps bbolt's default
	fileSize    atomic.Int64
}

// initialMmapSize is mapped at open so that read transactions (lookups)
// seldom block a commit that grows the file: bbolt remaps when the file
// outgrows its mapping, and a remap waits for every open read
// transaction. It is address space, not memory: nothing is read or
// allocated until used. 32-bit platforms do not have the address space
// to spare.
const initialMmapSize = 1 << 30

func openBolt(path string, o *options) (*boltBackend, error) {
	bo := &bolt.Options{
		Timeout:         o.lockTimeout,
		FreelistType:    bolt.FreelistMapType,
		NoFreelistSync:  true,
		NoSync:          o.noSync,
		InitialMmapSize: initialMmapSize,
		ReadOnly:        o.readOnly,
	}
	if strconv.IntSize < 64 {
		bo.InitialMmapSize = 0
	}
	db, err := openGuarded(path, bo)
	if err != nil && !errors.Is(err, berrors.ErrTimeout) && !errors.Is(err, onceflow.ErrCorrupt) && bo.InitialMmapSize > 0 {
		// A small address-space limit (ulimit -v, a 32-bit process
		// compiled as 64-bit elsewhere) can refuse the initial mapping;
		// the mapping is an optimization, so retry without it.
		bo.InitialMmapSize = 0
		db, err = openGuarded(path, bo)
	}
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, &lockedError{path: path, timeout: o.lockTimeout}
	}
	if err != nil {
		return nil, &storeError{op: "open", path: path, err: err}
	}
	be := &boltBackend{db: db, path: path, fillPercent: o.fillPercent}
	return be, nil
}

// openGuarded is bolt.Open that turns the damage it can see into an error
// matching onceflow.ErrCorrupt instead of a crash. With NoFreelistSync,
// Open walks every page in use to rebuild the free list, from a goroutine
// of its own: pages missing from a file cut short fault there (SIGBUS),
// which no recover can catch, so the file's size is checked against its
// newest valid meta page first; a corruption that walk reports is a panic
// of this goroutine, recovered here. A page header overwritten still fails
// an assertion inside the walk's goroutine and crashes the process: a known
// limit of bbolt (etcd-io/bbolt#1011, #705) that no caller can catch.
// After a recovered panic bbolt has not released the file: its descriptor
// and lock stay held until the process exits.
func openGuarded(path string, bo *bolt.Options) (db *bolt.DB, err error) {
	if err := checkFileSize(path); err != nil {
		return nil, err
	}
	defer func() {
		if v := recover(); v != nil {
			db, err = nil, corruptf("state file %s is damaged: %v", path, v)
		}
	}()
	return bolt.Open(path, 0o600, bo)
}

// checkFileSize fails when the file at path is shorter than its newest
// valid bbolt meta page says (page count times page size). A file that does
// not exist, is empty or has no valid meta page is left to bolt.Open.
func checkFileSize(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return nil
	}
	var best struct{ txid, need uint64 }
	found := false
	pageSize := int64(os.Getpagesize())
	for i := range int64(2) {
		m, ok := readMeta(f, i*pageSize)
		if !ok && i == 0 {
			continue
		}
		if ok && i == 0 {
			pageSize = int64(m.pageSize)
		}
		if ok && (!found || m.txid > best.txid) {
			best.txid, best.need, found = m.txid, m.pgid*uint64(m.pageSize), true
		}
	}
	if found && uint64(fi.Size()) < best.need {
		return corruptf("state file %s is cut short: %d bytes, its last commit needs %d", path, fi.Size(), best.need)
	}
	return nil
}

// boltMeta is what checkFileSize reads of a bbolt meta page (bbolt's
// internal/common.Meta after the 16-byte page header, in the machine's byte
// order): the page size, the high-water page id and the transaction id.
type boltMeta struct {
	pageSize   uint32
	pgid, txid uint64
}

// readMeta reads the meta page at off and reports whether it is valid:
// bbolt's magic number, format version 2 and an FNV-64a checksum that
// matches.
func readMeta(f *os.File, off int64) (boltMeta, bool) {
	const hdr, size = 16, 64 // page header; meta: 4 uint32, a 16-byte bucket, 4 uint64
	var b [hdr + size]byte
	if _, err := f.ReadAt(b[:], off); err != nil {
		return boltMeta{}, false
	}
	m := b[hdr:]
	ne := binary.NativeEndian
	h := fnv.New64a()
	h.Write(m[:56])
	if ne.Uint32(m[0:]) != 0xED0CDAED || ne.Uint32(m[4:]) != 2 || ne.Uint64(m[56:]) != h.Sum64() {
		return boltMeta{}, false
	}
	return boltMeta{pageSize: ne.Uint32(m[8:]), pgid: ne.Uint64(m[40:]), txid: ne.Uint64(m[48:])}, true
}

func (be *boltBackend) name() string { return be.path }

func (be *boltBackend) size() int64 { return be.fileSize.Load() }

func (be *boltBackend) close() error { return be.db.Close() }

func (be *boltBackend) findOutcome(cur, mask uint64, key []byte, fn func(slice uint64, v []byte) error) (bool, error) {
	found := false
	err := be.db.View(func(tx *bolt.Tx) error {
		var name [10]byte
		for j := uint64(0); mask>>j != 0; j++ {
			if mask&(1<<j) == 0 {
				continue
			}
			b := tx.Bucket(outcomeBucket(&name, cur-j))
			if b == nil {
				continue
			}
			if v := b.Get(key); v != nil {
				found = true
				return fn(cur-j, v)
			}
		}
		return nil
	})
	return found, err
}

func (be *boltBackend) get(bucket string, key []byte) ([]byte, bool, error) {
	var out []byte
	found := false
	err := be.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		if v := b.Get(key); v != nil {
			out, found = append(make([]byte, 0, len(v)), v...), true
		}
		return nil
	})
	return out, found, err
}

func (be *boltBackend) outbox(max int, fn func(seq uint64, v []byte) error) error {
	return be.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketOutbox))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		n := 0
		for k, v := c.First(); k != nil && n < max; k, v = c.Next() {
			if len(k) != 8 {
				return corruptf("outbox key of %d bytes", len(k))
			}
			if err := fn(binary.BigEndian.Uint64(k), v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}

func (be *boltBackend) list(bucket string, after []byte, max int, fn func(k, v []byte) error) error {
	return be.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		k, v := c.First()
		if after != nil {
			k, v = c.Seek(after)
			if k != nil && bytes.Equal(k, after) {
				k, v = c.Next()
			}
		}
		for n := 0; k != nil && n < max; k, v = c.Next() {
			if err := fn(k, v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}

func (be *boltBackend) deleteOutbox(seqs []uint64) error {
	return be.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket([]byte(bucketOutbox))
		if b == nil {
			return nil
		}
		var k [8]byte
		for _, seq := range seqs {
			binary.BigEndian.PutUint64(k[:], seq)
			if err := b.Delete(k[:]); err != nil {
				return err
			}
		}
		be.fileSize.Store(tx.Size())
		return nil
	})
}

func (be *boltBackend) scan(low uint64, fn func(slice uint64, key []byte) error) error {
	return be.db.View(func(tx *bolt.Tx) error {
		var name [10]byte
		c := tx.Cursor()
		for k, _ := c.Seek(outcomeBucket(&name, low)); k != nil; k, _ = c.Next() {
			slice, ok := parseOutcomeBucket(k)
			if !ok {
				break
			}
			b := tx.Bucket(k)
			if b == nil {
				return corruptf("outcome bucket %x is not a bucket", k)
			}
			bc := b.Cursor()
			for k, _ := bc.First(); k != nil; k, _ = bc.Next() {
				if err := fn(slice, k); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

func (be *boltBackend) update(fn func(tx writeTx) error) error {
	return be.db.Update(func(tx *bolt.Tx) error {
		if err := fn(&boltTx{tx: tx, fillPercent: be.fillPercent}); err != nil {
			return err
		}
		be.fileSize.Store(tx.Size())
		return nil
	})
}

func (be *boltBackend) check() error {
	return be.db.View(func(tx *bolt.Tx) error {
		var errs []error
		for err := range tx.Check() {
			errs = append(errs, err)
		}
		if len(errs) > 0 {
			return fmt.Errorf("bbolt check: %w", errors.Join(errs...))
		}
		return checkValues(func(bucket string, fn func(k, v []byte) error) error {
			if bucket == outcomePrefix {
				c := tx.Cursor()
				for k, _ := c.Seek([]byte(outcomePrefix)); k != nil && bytes.HasPrefix(k, []byte(outcomePrefix)); k, _ = c.Next() {
					b := tx.Bucket(k)
					if b == nil {
						return corruptf("outcome bucket %x is not a bucket", k)
					}
					if err := b.ForEach(fn); err != nil {
						return err
					}
				}
				return nil
			}
			if b := tx.Bucket([]byte(bucket)); b != nil {
				return b.ForEach(fn)
			}
			return nil
		})
	})
}

// boltTx is a bbolt write transaction.
type boltTx struct {
	tx          *bolt.Tx
	fillPercent float64
	// the last outcome bucket used, to skip the name lookup for the
	// common case of one commit into the current slice
	slice  uint64
	bucket *bolt.Bucket
}

func (t *boltTx) outcomeBucket(slice uint64, create bool) (*bolt.Bucket, error) {
	if t.bucket != nil && t.slice == slice {
		return t.bucket, nil
	}
	var name [10]byte
	n := outcomeBucket(&name, slice)
	b := t.tx.Bucket(n)
	if b == nil {
		if !create {
			return nil, nil
		}
		var err error
		if b, err = t.tx.CreateBucket(n); err != nil {
			return nil, err
		}
	}
	if t.fillPercent > 0 {
		b.FillPercent = t.fillPercent
	}
	t.slice, t.bucket = slice, b
	return b, nil
}

func (t *boltTx) outcome(slice uint64, key []byte) []byte {
	b, _ := t.outcomeBucket(slice, false)
	if b == nil {
		return nil
	}
	return b.Get(key)
}

func (t *boltTx) putOutcome(slice uint64, key, v []byte) error {
	b, err := t.outcomeBucket(slice, true)
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

func (t *boltTx) deleteOutcome(slice uint64, key []byte) error {
	b, err := t.outcomeBucket(slice, false)
	if err != nil || b == nil {
		return err
	}
	return b.Delete(key)
}

func (t *boltTx) slices() ([]uint64, error) {
	var out []uint64
	c := t.tx.Cursor()
	for k, _ := c.Seek([]byte(outcomePrefix)); k != nil; k, _ = c.Next() {
		slice, ok := parseOutcomeBucket(k)
		if !ok {
			break
		}
		out = append(out, slice)
	}
	return out, nil
}

func (t *boltTx) deleteSlice(slice uint64) error {
	if t.bucket != nil && t.slice == slice {
		t.bucket = nil
	}
	var name [10]byte
	err := t.tx.DeleteBucket(outcomeBucket(&name, slice))
	if errors.Is(err, berrors.ErrBucketNotFound) {
		return nil
	}
	return err
}

func (t *boltTx) forEachOutcome(slice uint64, fn func(k, v []byte) error) error {
	b, err := t.outcomeBucket(slice, false)
	if err != nil || b == nil {
		return err
	}
	return b.ForEach(fn)
}

func (t *boltTx) get(bucket string, key []byte) []byte {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Get(key)
}

func (t *boltTx) put(bucket string, key, v []byte) error {
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucket))
	if err != nil {
		return err
	}
	return b.Put(key, v)
}

func (t *boltTx) delete(bucket string, key []byte) error {
	b := t.tx.Bucket([]byte(bucket))
	if b == nil {
		return nil
	}
	return b.Delete(key)
}

func (t *boltTx) nextOutboxSeq() (uint64, error) {
	b, err := t.tx.CreateBucketIfNotExists([]byte(bucketOutbox))
	if err != nil {
		return 0, err
	}
	return b.NextSequence()
}
