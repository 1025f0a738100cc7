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
// message, kind is 0.
const recordVersion = 1

// Tags of an outcome record.
const (
	tagAttempts     = 1 // uvarint
	tagFirstSeen    = 2 // varint, Unix nanoseconds; absent for the zero Time
	tagErrorClass   = 3 // bytes
	tagResult       = 4 // bytes
	tagRaw          = 5 // bytes: the event as received (dead letters)
	tagReason       = 6 // bytes: why the event was dead-lettered
	tagLastError    = 7 // bytes: the text of the last error
	tagAttemptTimes = 8 // varints, Unix nanoseconds of each attempt
)

// Tags of an outbox message.
const (
	tagMsgKey     = 1
	tagMsgTopic   = 2
	tagMsgPayload = 3
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// record is the stored form of an identity's outcome. Fields after
// Result are written only for dead letters and are not exposed through
// onceflow.Outcome yet.
type record struct {
	status       onceflow.Status
	attempts     uint32
	firstSeen    int64 // Unix nanoseconds; valid when hasFirstSeen
	hasFirstSeen bool
	errorClass   string
	result       []byte
	raw          []byte
	reason       string
	lastError    string
	attemptTimes []int64
}

// recordOf returns the record stored for a committed onceflow.Record. The
// raw event is kept for dead letters only.
func recordOf(r *onceflow.Record) record {
	rec := record{
		status:     r.Outcome.Status,
		attempts:   r.Outcome.Attempts,
		errorClass: r.Outcome.ErrorClass,
		result:     r.Outcome.Result,
	}
	if t := r.Outcome.FirstSeen; !t.IsZero() {
		rec.firstSeen, rec.hasFirstSeen = t.UnixNano(), true
	}
	if rec.status == onceflow.StatusDeadLettered {
		rec.raw = r.Raw
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
	}
	if rec.hasFirstSeen {
		o.FirstSeen = time.Unix(0, rec.firstSeen).UTC()
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
	if rec.hasFirstSeen {
		var b [binary.MaxVarintLen64]byte
		dst = appendField(dst, tagFirstSeen, b[:binary.PutVarint(b[:], rec.firstSeen)])
	}
	dst = appendStringField(dst, tagErrorClass, rec.errorClass)
	if len(rec.result) > 0 {
		dst = appendField(dst, tagResult, rec.result)
	}
	if len(rec.raw) > 0 {
		dst = appendField(dst, tagRaw, rec.raw)
	}
	dst = appendStringField(dst, tagReason, rec.reason)
	dst = appendStringField(dst, tagLastError, rec.lastError)
	if len(rec.attemptTimes) > 0 {
		n := 0
		var b [binary.MaxVarintLen64]byte
		for _, t := range rec.attemptTimes {
			n += binary.PutVarint(b[:], t)
		}
		dst = binary.AppendUvarint(dst, tagAttemptTimes)
		dst = binary.AppendUvarint(dst, uint64(n))
		for _, t := range rec.attemptTimes {
			dst = binary.AppendVarint(dst, t)
		}
	}
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], crcTable))
}

// decodeRecord decodes an outcome record. The result, raw and string
// fields of the returned record alias b where noted: result and raw alias
// b, strings are copies. Errors match onceflow.ErrCorrupt.
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
			n, w := binary.Varint(v)
			if w <= 0 || w != len(v) {
				return corruptf("bad first-seen field")
			}
			rec.firstSeen, rec.hasFirstSeen = n, true
		case tagErrorClass:
			rec.errorClass = string(v)
		case tagResult:
			rec.result = v
		case tagRaw:
			rec.raw = v
		case tagReason:
			rec.reason = string(v)
		case tagLastError:
			rec.lastError = string(v)
		case tagAttemptTimes:
			for len(v) > 0 {
				t, w := binary.Varint(v)
				if w <= 0 {
					return corruptf("bad attempt-times field")
				}
				rec.attemptTimes = append(rec.attemptTimes, t)
				v = v[w:]
			}
		}
		return nil
	})
	return rec, err
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
