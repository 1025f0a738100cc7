package dedup

import (
	"encoding/binary"
	"hash/crc32"
	"time"

	onceflow "github.com/onceflow/onceflow"
)

// Stored values (outcome records and outbox messages) share one
// extensible, checksummed format:
//
//	version byte | kind byte | field* | crc32c (4 bytes, little endian)
//	field = tag uvarint | length uvarint | length bytes
//
// Fields appear in strictly increasing tag order, each at most once; a
// decoder skips tags it does not know, so that later versions can add
// fields (dead-letter details, say) that older binaries ignore. A version
// byte above the one this code writes is refused, so that a format change
// that is not merely additive can bump it. The checksum (CRC-32C, over
// everything before it) catches torn or flipped bytes that bbolt's own
// page checks would not.
//
// For an outcome record, kind is the Status (0 is invalid). For an outbox
// message and a dead letter, kind is 0.
const recordVersion = 1

// Tags of an outcome record. A time is varint(Unix seconds) followed by
// uvarint(nanoseconds), which covers every time.Time a clock can give;
// the zero Time is absent.
const (
	tagAttempts   = 1 // uvarint
	tagFirstSeen  = 2 // time
	tagErrorClass = 3 // bytes
	tagResult     = 4 // bytes
)

// Tags of a dead letter (kind 0, in the dead-letter bucket).
const (
	tagDLAttempts     = 1 // uvarint
	tagDLFirstAttempt = 2 // time
	tagDLLastAttempt  = 3 // time
	tagDLRaw          = 4 // bytes
	tagDLReason       = 5 // bytes
	tagDLError        = 6 // bytes
	tagDLStack        = 7 // bytes
	tagDLRedriven     = 8 // time
)

// Tags of an outbox message.
const (
	tagMsgKey     = 1
	tagMsgTopic   = 2
	tagMsgPayload = 3
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// record is the stored form of an identity's outcome. It stays small:
// the details of a dead letter are in the dead-letter bucket.
type record struct {
	status     onceflow.Status
	attempts   uint32
	firstSeen  time.Time // UTC; zero when unknown
	errorClass string
	result     []byte
}

// recordOf returns the record stored for a committed onceflow.Record.
func recordOf(r *onceflow.Record) record {
	rec := record{
		status:     r.Outcome.Status,
		attempts:   r.Outcome.Attempts,
		errorClass: r.Outcome.ErrorClass,
		result:     r.Outcome.Result,
	}
	if t := r.Outcome.FirstSeen; !t.IsZero() {
		rec.firstSeen = t.UTC().Round(0)
	}
	return rec
}

// outcome returns rec as an Outcome. Result is copied when copyResult is
// set; otherwise it aliases rec.result.
func (rec *record) outcome(copyResult bool) onceflow.Outcome {
	o := onceflow.Outcome{
		Status:     rec.status,
		Attempts:   rec.attempts,
		ErrorClass: rec.errorClass,
		Result:     rec.result,
		FirstSeen:  rec.firstSeen,
	}
	if copyResult && rec.result != nil {
		o.Result = append([]byte(nil), rec.result...)
	}
	return o
}

// appendRecord appends the encoding of rec to dst.
func appendRecord(dst []byte, rec *record) []byte {
	start := len(dst)
	dst = append(dst, recordVersion, byte(rec.status))
	if rec.attempts != 0 {
		dst = appendUvarintField(dst, tagAttempts, uint64(rec.attempts))
	}
	dst = appendTimeField(dst, tagFirstSeen, rec.firstSeen)
	dst = appendStringField(dst, tagErrorClass, rec.errorClass)
	if len(rec.result) > 0 {
		dst = appendField(dst, tagResult, rec.result)
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable))
}

// decodeRecord decodes an outcome record. Its result aliases b; its
// strings are copies. Errors match onceflow.ErrCorrupt.
func decodeRecord(b []byte) (record, error) {
	var rec record
	kind, fields, err := openValue(b)
	if err != nil {
		return rec, err
	}
	if kind == 0 {
		return rec, corruptf("record has no status")
	}
	rec.status = onceflow.Status(kind)
	err = eachField(fields, func(tag uint64, v []byte) error {
		switch tag {
		case tagAttempts:
			n, err := uvarintValue(v)
			if err != nil || n > 1<<32-1 {
				return corruptf("bad attempts field")
			}
			rec.attempts = uint32(n)
		case tagFirstSeen:
			t, err := timeValue(v)
			if err != nil {
				return err
			}
			rec.firstSeen = t
		case tagErrorClass:
			rec.errorClass = string(v)
		case tagResult:
			rec.result = v
		}
		return nil
	})
	return rec, err
}

// appendDeadLetter appends the encoding of d (but its ID, which is the
// key) to dst.
func appendDeadLetter(dst []byte, d *onceflow.DeadLetter) []byte {
	start := len(dst)
	dst = append(dst, recordVersion, 0)
	if d.Attempts != 0 {
		dst = appendUvarintField(dst, tagDLAttempts, uint64(d.Attempts))
	}
	dst = appendTimeField(dst, tagDLFirstAttempt, d.FirstAttempt)
	dst = appendTimeField(dst, tagDLLastAttempt, d.LastAttempt)
	if len(d.Raw) > 0 {
		dst = appendField(dst, tagDLRaw, d.Raw)
	}
	dst = appendStringField(dst, tagDLReason, d.Reason)
	dst = appendStringField(dst, tagDLError, d.Error)
	if len(d.Stack) > 0 {
		dst = appendField(dst, tagDLStack, d.Stack)
	}
	dst = appendTimeField(dst, tagDLRedriven, d.Redriven)
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable))
}

// decodeDeadLetter decodes a dead letter; its byte fields are copies.
func decodeDeadLetter(b []byte) (onceflow.DeadLetter, error) {
	var d onceflow.DeadLetter
	kind, fields, err := openValue(b)
	if err != nil {
		return d, err
	}
	if kind != 0 {
		return d, corruptf("dead letter of kind %d", kind)
	}
	err = eachField(fields, func(tag uint64, v []byte) error {
		var err error
		switch tag {
		case tagDLAttempts:
			var n uint64
			n, err = uvarintValue(v)
			if err == nil && n > 1<<32-1 {
				err = corruptf("bad attempts field")
			}
			d.Attempts = uint32(n)
		case tagDLFirstAttempt:
			d.FirstAttempt, err = timeValue(v)
		case tagDLLastAttempt:
			d.LastAttempt, err = timeValue(v)
		case tagDLRaw:
			d.Raw = append([]byte(nil), v...)
		case tagDLReason:
			d.Reason = string(v)
		case tagDLError:
			d.Error = string(v)
		case tagDLStack:
			d.Stack = append([]byte(nil), v...)
		case tagDLRedriven:
			d.Redriven, err = timeValue(v)
		}
		return err
	})
	return d, err
}

// appendMessage appends the encoding of an outbox message to dst.
func appendMessage(dst []byte, m *onceflow.Message) []byte {
	start := len(dst)
	dst = append(dst, recordVersion, 0)
	dst = appendStringField(dst, tagMsgKey, m.Key)
	dst = appendStringField(dst, tagMsgTopic, m.Topic)
	if len(m.Payload) > 0 {
		dst = appendField(dst, tagMsgPayload, m.Payload)
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable))
}

// decodeMessage decodes an outbox message; the payload is a copy.
func decodeMessage(b []byte) (onceflow.Message, error) {
	var m onceflow.Message
	kind, fields, err := openValue(b)
	if err != nil {
		return m, err
	}
	if kind != 0 {
		return m, corruptf("outbox message of kind %d", kind)
	}
	err = eachField(fields, func(tag uint64, v []byte) error {
		switch tag {
		case tagMsgKey:
			m.Key = string(v)
		case tagMsgTopic:
			m.Topic = string(v)
		case tagMsgPayload:
			m.Payload = append([]byte(nil), v...)
		}
		return nil
	})
	return m, err
}

// openValue checks the version and checksum of a stored value and returns
// its kind byte and its fields.
func openValue(b []byte) (kind byte, fields []byte, err error) {
	if len(b) < 2+4 {
		return 0, nil, corruptf("value of %d bytes is too short", len(b))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return 0, nil, corruptf("checksum mismatch")
	}
	if body[0] == 0 || body[0] > recordVersion {
		return 0, nil, corruptf("unsupported format version %d", body[0])
	}
	return body[1], body[2:], nil
}

// eachField calls fn for each field of b, checking that tags strictly
// increase and lengths fit.
func eachField(b []byte, fn func(tag uint64, v []byte) error) error {
	var last uint64
	for len(b) > 0 {
		tag, w := binary.Uvarint(b)
		if w <= 0 || tag <= last {
			return corruptf("bad field tag")
		}
		b = b[w:]
		n, w := binary.Uvarint(b)
		if w <= 0 || n > uint64(len(b)-w) {
			return corruptf("bad length of field %d", tag)
		}
		b = b[w:]
		if err := fn(tag, b[:n:n]); err != nil {
			return err
		}
		b = b[n:]
		last = tag
	}
	return nil
}

func timeValue(v []byte) (time.Time, error) {
	sec, w := binary.Varint(v)
	if w <= 0 {
		return time.Time{}, corruptf("bad time field")
	}
	nsec, w2 := binary.Uvarint(v[w:])
	if w2 <= 0 || w+w2 != len(v) || nsec >= 1e9 {
		return time.Time{}, corruptf("bad time field")
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if t.IsZero() {
		return time.Time{}, corruptf("zero time field")
	}
	return t, nil
}

func appendTimeField(dst []byte, tag uint64, t time.Time) []byte {
	if t.IsZero() {
		return dst
	}
	var b [2 * binary.MaxVarintLen64]byte
	n := binary.PutVarint(b[:], t.Unix())
	n += binary.PutUvarint(b[n:], uint64(t.Nanosecond()))
	return appendField(dst, tag, b[:n])
}

func uvarintValue(v []byte) (uint64, error) {
	n, w := binary.Uvarint(v)
	if w <= 0 || w != len(v) {
		return 0, corruptf("bad uvarint field")
	}
	return n, nil
}

func appendField(dst []byte, tag uint64, v []byte) []byte {
	dst = binary.AppendUvarint(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

func appendStringField(dst []byte, tag uint64, v string) []byte {
	if v == "" {
		return dst
	}
	dst = binary.AppendUvarint(dst, tag)
	dst = binary.AppendUvarint(dst, uint64(len(v)))
	return append(dst, v...)
}

func appendUvarintField(dst []byte, tag, v uint64) []byte {
	var b [binary.MaxVarintLen64]byte
	return appendField(dst, tag, b[:binary.PutUvarint(b[:], v)])
}
