package dedup

import "encoding/binary"

// backend is the storage under a Store: bbolt on disk (boltBackend) or
// maps in memory (memBackend). The tiers, the window and the commit logic
// live in Store and are shared; a backend only stores bytes in named
// buckets, one transaction at a time.
//
// Read methods are safe for concurrent use with each other and with
// update. update and deleteOutbox are serialized by the backend.
type backend interface {
	// findOutcome looks key up in the outcome buckets of the slices cur-j
	// for each bit j of mask, newest first, and calls fn with the first
	// value found, which is valid only during fn.
	findOutcome(cur, mask uint64, key []byte, fn func(slice uint64, v []byte) error) (bool, error)
	// get returns a copy of the value of key in the bucket named b.
	get(b string, key []byte) ([]byte, bool, error)
	// outbox calls fn with the first max outbox entries, in sequence
	// order; v is valid only during fn.
	outbox(max int, fn func(seq uint64, v []byte) error) error
	// list calls fn with at most max entries of the bucket named b whose
	// keys follow after (all when after is nil), in key order; k and v
	// are valid only during fn.
	list(b string, after []byte, max int, fn func(k, v []byte) error) error
	// deleteOutbox deletes the outbox entries of seqs in one durable
	// transaction; missing entries are ignored.
	deleteOutbox(seqs []uint64) error
	// scan calls fn with every key of the outcome buckets of the slices
	// at or above low; key is valid only during fn.
	scan(low uint64, fn func(slice uint64, key []byte) error) error
	// update runs fn in one write transaction and commits it durably if
	// fn returns nil; otherwise nothing fn wrote is kept. Keys and values
	// passed to the transaction's put methods must stay unchanged until
	// update returns.
	update(fn func(tx writeTx) error) error
	// check verifies the backend's structure and every stored value.
	check() error
	// size is the size of the store file in bytes; 0 in memory.
	size() int64
	// name is the file path, or "memory".
	name() string
	close() error
}

// writeTx is a backend's write transaction. Its reads see its own writes.
type writeTx interface {
	outcome(slice uint64, key []byte) []byte
	putOutcome(slice uint64, key, v []byte) error
	deleteOutcome(slice uint64, key []byte) error
	// slices lists the slices that have an outcome bucket, ascending.
	slices() ([]uint64, error)
	deleteSlice(slice uint64) error
	forEachOutcome(slice uint64, fn func(k, v []byte) error) error
	get(b string, key []byte) []byte
	put(b string, key, v []byte) error
	delete(b string, key []byte) error
	nextOutboxSeq() (uint64, error)
}

// Bucket names and meta keys.
const (
	bucketState  = "state"  // handler state; key: the full state key
	bucketOutbox = "outbox" // key: 8-byte big-endian sequence
	bucketMeta   = "meta"   // the keys below, and checkpoints
	bucketDead   = "dead"   // dead letters; key: the identity key

	outcomePrefix = "o/" // + 8-byte big-endian slice index

	metaVersion    = "version"     // 1 byte: the layout version
	metaCommits    = "commits"     // 8-byte big-endian commit counter
	metaSliceWidth = "slice_width" // 8-byte big-endian slice width in ns
	metaCheckpoint = "c/"          // + checkpoint name

	layoutVersion = 1
)

// outcomeBucket returns the name of slice's outcome bucket in b.
func outcomeBucket(b *[10]byte, slice uint64) []byte {
	copy(b[:], outcomePrefix)
	binary.BigEndian.PutUint64(b[2:], slice)
	return b[:]
}

// parseOutcomeBucket returns the slice of an outcome bucket's name.
func parseOutcomeBucket(name []byte) (uint64, bool) {
	if len(name) != 10 || string(name[:2]) != outcomePrefix {
		return 0, false
	}
	return binary.BigEndian.Uint64(name[2:]), true
}
