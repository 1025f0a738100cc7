package onceflow

import (
	"encoding/binary"
	"time"
)

// Event is one CloudEvents 1.0 event, decoded from the JSON structured
// format by [Decoder.Decode].
//
// The string fields of a decoded Event may share memory with Raw; neither
// Raw nor the fields may be modified once the Event has been handed to a
// pipeline. An Event is safe for concurrent reads.
type Event struct {
	// SpecVersion is the CloudEvents version; only "1.0" is accepted.
	SpecVersion string
	// ID identifies the event within its Source. Required, non-empty.
	ID string
	// Source identifies the context in which the event happened. Required.
	Source string
	// Type describes the kind of event (and, by convention, its payload
	// version). Required.
	Type string
	// Time is when the occurrence happened; the zero Time when absent.
	Time time.Time
	// Subject, DataContentType and DataSchema are the optional CloudEvents
	// attributes of the same names; "" when absent.
	Subject         string
	DataContentType string
	DataSchema      string
	// Data is the payload: the raw JSON text of the "data" member, or the
	// decoded bytes of "data_base64" when DataBase64 is true. Nil when the
	// event carries no data.
	Data       []byte
	DataBase64 bool
	// PartitionKey is the "partitionkey" extension; "" when absent. Use
	// [Event.Key] for the key that orders and shards the event.
	PartitionKey string
	// Sequence is the "sequence" extension parsed as a positive integer; 0
	// when absent.
	Sequence uint64
	// Raw holds the exact bytes the event was decoded from, so that a
	// pass-through sink can write the original line unchanged. Nil for an
	// Event built in code.
	Raw []byte
}

// Key returns the key that orders and shards the event: PartitionKey, or
// Source when PartitionKey is absent.
func (e *Event) Key() string {
	if e.PartitionKey != "" {
		return e.PartitionKey
	}
	return e.Source
}

// Identity returns the event's identity, source plus id.
func (e *Event) Identity() Identity { return Identity{Source: e.Source, ID: e.ID} }

// Size returns the number of bytes the event counts for in queue limits:
// len(Raw) when the event was decoded, otherwise an estimate from its fields.
func (e *Event) Size() int {
	if e.Raw != nil {
		return len(e.Raw)
	}
	return 64 + len(e.ID) + len(e.Source) + len(e.Type) + len(e.Subject) +
		len(e.DataContentType) + len(e.DataSchema) + len(e.Data) + len(e.PartitionKey)
}

// Identity is what makes two deliveries the same event: CloudEvents' source
// plus id. Two identities are equal only when both fields are equal byte for
// byte; hashes of identities are never trusted on their own.
type Identity struct {
	Source string
	ID     string
}

// AppendKey appends the binary encoding of id used as a store key:
// uvarint(len(Source)) | Source | ID. The length prefix makes the encoding
// injective: no two distinct identities share a key.
func (id Identity) AppendKey(dst []byte) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(id.Source)))
	dst = append(dst, id.Source...)
	return append(dst, id.ID...)
}

// ParseIdentityKey is the inverse of [Identity.AppendKey].
func ParseIdentityKey(key []byte) (Identity, error) {
	n, w := binary.Uvarint(key)
	if w <= 0 || uint64(len(key)-w) < n {
		return Identity{}, ErrCorrupt
	}
	rest := key[w:]
	return Identity{Source: string(rest[:n]), ID: string(rest[n:])}, nil
}

// String returns a printable form of id for logs and errors, with each
// field quoted and cut to 64 bytes.
func (id Identity) String() string {
	return "source=" + quoteCut(id.Source) + " id=" + quoteCut(id.ID)
}

// IdempotencyKey returns the stable key a handler passes to effects outside
// onceflow (an HTTP call, an email) so that the receiver can drop repeats:
// every delivery and every retry of the same event yields the same key, and
// distinct (identity, step) pairs yield distinct keys. step names the effect
// when a handler performs several; it may be "".
//
// The key is printable ASCII: "of1-" followed by the hexadecimal encoding of
// the identity key and the step.
func IdempotencyKey(id Identity, step string) string {
	b := id.AppendKey(make([]byte, 0, 16+len(id.Source)+len(id.ID)+len(step)))
	b = binary.AppendUvarint(b, uint64(len(step)))
	b = append(b, step...)
	const hex = "0123456789abcdef"
	out := make([]byte, 4, 4+2*len(b))
	copy(out, "of1-")
	for _, c := range b {
		out = append(out, hex[c>>4], hex[c&0xf])
	}
	return string(out)
}
