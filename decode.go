package onceflow

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"
)

// decodeConfig holds the limits of a Decoder. Every field is positive in a
// Decoder built by NewDecoder; the zero decodeConfig stands for the defaults.
type decodeConfig struct {
	maxEventBytes      int
	maxDepth           int
	maxIdentifierBytes int
}

// defaultDecodeConfig returns the default limits, documented with the
// options.
func defaultDecodeConfig() decodeConfig {
	return decodeConfig{
		maxEventBytes:      1 << 20,
		maxDepth:           64,
		maxIdentifierBytes: 256,
	}
}

// A DecodeOption sets a limit of a [Decoder].
type DecodeOption interface{ apply(*decodeConfig) }

type decodeOptionFunc func(*decodeConfig)

func (f decodeOptionFunc) apply(c *decodeConfig) { f(c) }

// WithMaxEventBytes bounds the size of a whole event, in bytes of input,
// surrounding whitespace included. A larger input fails with
// [ErrEventTooLarge] before any of it is parsed. The default is 1 MiB
// (1<<20); n must be positive.
func WithMaxEventBytes(n int) DecodeOption {
	return decodeOptionFunc(func(c *decodeConfig) { c.maxEventBytes = n })
}

// WithMaxDepth bounds the JSON nesting depth anywhere in an event: the event
// object is depth 1, so "data":{"a":[1]} reaches depth 3. Deeper input fails
// with [ErrTooDeep]. The default is 64; n must be positive. The decoder
// does not recurse, so a large limit costs no stack.
func WithMaxDepth(n int) DecodeOption {
	return decodeOptionFunc(func(c *decodeConfig) { c.maxDepth = n })
}

// WithMaxIdentifierBytes bounds the length in bytes, after unescaping, of the
// attributes that become store keys: id, source and partitionkey. A longer
// value fails with [ErrInvalidIdentifier]. The default is 256; n must be
// positive and at most [MaxIdentifierBytes].
func WithMaxIdentifierBytes(n int) DecodeOption {
	return decodeOptionFunc(func(c *decodeConfig) { c.maxIdentifierBytes = n })
}

// Decoder decodes CloudEvents 1.0 events in the JSON structured format,
// strictly: every class of bad input fails with a [*DecodeError] wrapping
// one of the sentinels listed with [Reason].
//
// A Decoder is immutable once built and safe for concurrent use. The zero
// Decoder is ready to use and applies the default limits.
type Decoder struct {
	cfg decodeConfig
}

// NewDecoder returns a Decoder with the given limits; unset limits take
// their defaults. It fails when an option's value is not positive, or
// above its maximum.
func NewDecoder(opts ...DecodeOption) (*Decoder, error) {
	cfg := defaultDecodeConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	switch {
	case cfg.maxEventBytes <= 0:
		return nil, fmt.Errorf("onceflow: WithMaxEventBytes(%d): limit must be positive", cfg.maxEventBytes)
	case cfg.maxDepth <= 0:
		return nil, fmt.Errorf("onceflow: WithMaxDepth(%d): limit must be positive", cfg.maxDepth)
	case cfg.maxIdentifierBytes <= 0:
		return nil, fmt.Errorf("onceflow: WithMaxIdentifierBytes(%d): limit must be positive", cfg.maxIdentifierBytes)
	case cfg.maxIdentifierBytes > MaxIdentifierBytes:
		return nil, fmt.Errorf("onceflow: WithMaxIdentifierBytes(%d): limit must be at most MaxIdentifierBytes (%d), which keeps identities within the store's key size", cfg.maxIdentifierBytes, MaxIdentifierBytes)
	}
	return &Decoder{cfg: cfg}, nil
}

// DecodeEvent decodes one event with the default limits; see
// [Decoder.Decode].
func DecodeEvent(data []byte) (*Event, error) {
	var d Decoder
	return d.Decode(data)
}

// Decode decodes data, which must hold exactly one JSON object (one JSON
// Lines line; surrounding whitespace, such as the line's "\r\n", is
// allowed), as a CloudEvents 1.0 event.
//
// On success the Event's Raw is a copy of data, the only copy Decode makes:
// the string fields and Data point into Raw wherever the JSON text needs no
// unescaping, so neither Raw nor the bytes of Data may be modified. data
// itself is not retained.
//
// On failure the error is a [*DecodeError]; see [Reason] for the classes.
// When the input has several faults, the oversize check comes first, then
// the first fault of JSON syntax, UTF-8, nesting or duplicate members, then
// the first fault in an attribute's value, then data and data_base64
// together, then missing attributes.
func (d *Decoder) Decode(data []byte) (*Event, error) {
	cfg := d.cfg
	if cfg == (decodeConfig{}) {
		cfg = defaultDecodeConfig()
	}
	if len(data) > cfg.maxEventBytes {
		return nil, &DecodeError{Err: ErrEventTooLarge,
			Detail: strconv.Itoa(len(data)) + " bytes, limit " + strconv.Itoa(cfg.maxEventBytes)}
	}
	ev := &Event{Raw: make([]byte, len(data))}
	copy(ev.Raw, data)
	s := scanner{buf: ev.Raw, maxDepth: cfg.maxDepth, maxIdent: cfg.maxIdentifierBytes}
	if err := s.event(ev); err != nil {
		return nil, err
	}
	return ev, nil
}

// Bits of the attributes the decoder knows, to detect duplicates without a
// set.
const (
	attrSpecVersion = 1 << iota
	attrID
	attrSource
	attrType
	attrTime
	attrSubject
	attrDataContentType
	attrDataSchema
	attrData
	attrDataBase64
	attrPartitionKey
	attrSequence
)

func attrName(bit int) string {
	switch bit {
	case attrSpecVersion:
		return "specversion"
	case attrID:
		return "id"
	case attrSource:
		return "source"
	case attrType:
		return "type"
	case attrTime:
		return "time"
	case attrSubject:
		return "subject"
	case attrDataContentType:
		return "datacontenttype"
	case attrDataSchema:
		return "dataschema"
	case attrData:
		return "data"
	case attrDataBase64:
		return "data_base64"
	case attrPartitionKey:
		return "partitionkey"
	case attrSequence:
		return "sequence"
	}
	return ""
}

func attrBit(name string) int {
	switch name {
	case "specversion":
		return attrSpecVersion
	case "id":
		return attrID
	case "source":
		return attrSource
	case "type":
		return attrType
	case "time":
		return attrTime
	case "subject":
		return attrSubject
	case "datacontenttype":
		return attrDataContentType
	case "dataschema":
		return attrDataSchema
	case "data":
		return attrData
	case "data_base64":
		return attrDataBase64
	case "partitionkey":
		return attrPartitionKey
	case "sequence":
		return attrSequence
	}
	return 0
}

// scanner is the state of one Decode call: a single forward pass over buf.
// Positions are passed as arguments and results rather than kept in the
// struct, so that they stay in registers on the hot path.
type scanner struct {
	buf      []byte
	maxDepth int
	maxIdent int
	// attr is the bit of the known attribute whose value is being decoded,
	// ext the name of the extension; errors name them as their field. They
	// are 0 and "" outside any member's value. (A bit, not the name, is set
	// per member: a string store costs a write barrier.)
	attr int
	ext  string
	// bad is the first fault found in an attribute's value. The scan goes
	// on after it so that a syntax fault later in the input still wins.
	bad *DecodeError
}

// field returns the name of the top-level member being decoded, or "".
func (s *scanner) field() string {
	if s.attr == 0 {
		return s.ext
	}
	return attrName(s.attr)
}

// event decodes the top-level object into ev.
func (s *scanner) event(ev *Event) error {
	b := s.buf
	i := skipSpace(b, 0)
	if i >= len(b) {
		return s.fail(ErrMalformedJSON, "empty input")
	}
	if b[i] != '{' {
		return s.fail(ErrMalformedJSON, "not a JSON object")
	}
	var (
		seen    int
		extArr  [8]string
		extList = extArr[:0]
		ext     = frame{obj: true}
		err     error
	)
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		i++
	} else {
		for {
			var (
				name string
				bit  int
			)
			if bit, name, i = knownName(b, i); bit == 0 {
				if name, i, err = s.memberName(i); err != nil {
					return err
				}
				bit = attrBit(name)
			}
			if bit != 0 {
				if seen&bit != 0 {
					return s.failField(name, ErrDuplicateMember, "appears more than once")
				}
				seen |= bit
			} else {
				var ok bool
				if extList, ok = ext.add(extList, name); !ok {
					return s.failField(name, ErrDuplicateMember, "appears more than once")
				}
				s.ext = name
			}
			s.attr = bit
			if i, err = s.member(ev, bit, i); err != nil {
				return err
			}
			s.attr = 0
			if bit == 0 {
				s.ext = ""
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return s.eof()
			}
			c, at := b[i], i
			i = skipSpace(b, i+1)
			if c == '}' {
				break
			}
			if c != ',' {
				return s.failAt(ErrMalformedJSON, "expected ',' or '}' after member value", at)
			}
		}
	}
	if i = skipSpace(b, i); i != len(b) {
		return s.failAt(ErrMalformedJSON, "trailing data after the object", i)
	}
	if s.bad != nil {
		return s.bad
	}
	if seen&attrData != 0 && seen&attrDataBase64 != 0 {
		return s.failField("data_base64", ErrWrongType, "both data and data_base64 present")
	}
	for _, bit := range [...]int{attrSpecVersion, attrID, attrSource, attrType} {
		if seen&bit == 0 {
			return s.failField(attrName(bit), ErrMissingAttribute, "absent")
		}
	}
	return nil
}

// knownName matches the name of a known attribute at b[i], spelled without
// escapes and followed by a colon without whitespace: the usual form, which
// it decodes faster than memberName. It returns the attribute's bit, its
// name and the index of the value, or 0 when the name is not matched.
func knownName(b []byte, i int) (bit int, name string, next int) {
	if i+4 >= len(b) {
		return 0, "", i
	}
	r := b[i:]
	// Each literal has a constant length, so the comparisons compile to a
	// few word compares.
	switch r[1] {
	case 's':
		switch {
		case hasPrefix(r, `"specversion":`):
			bit, name = attrSpecVersion, "specversion"
		case hasPrefix(r, `"source":`):
			bit, name = attrSource, "source"
		case hasPrefix(r, `"subject":`):
			bit, name = attrSubject, "subject"
		case hasPrefix(r, `"sequence":`):
			bit, name = attrSequence, "sequence"
		}
	case 'i':
		if hasPrefix(r, `"id":`) {
			bit, name = attrID, "id"
		}
	case 't':
		switch {
		case hasPrefix(r, `"type":`):
			bit, name = attrType, "type"
		case hasPrefix(r, `"time":`):
			bit, name = attrTime, "time"
		}
	case 'd':
		switch {
		case hasPrefix(r, `"data":`):
			bit, name = attrData, "data"
		case hasPrefix(r, `"datacontenttype":`):
			bit, name = attrDataContentType, "datacontenttype"
		case hasPrefix(r, `"dataschema":`):
			bit, name = attrDataSchema, "dataschema"
		case hasPrefix(r, `"data_base64":`):
			bit, name = attrDataBase64, "data_base64"
		}
	case 'p':
		if hasPrefix(r, `"partitionkey":`) {
			bit, name = attrPartitionKey, "partitionkey"
		}
	}
	if bit == 0 {
		return 0, "", i
	}
	return bit, name, skipSpace(b, i+len(name)+3)
}

func hasPrefix(b []byte, lit string) bool {
	return len(b) >= len(lit) && string(b[:len(lit)]) == lit
}

// memberName scans the member name at b[i], after whitespace, and the colon
// after it; it returns the unescaped name and the index of the value.
func (s *scanner) memberName(i int) (name string, next int, err error) {
	b := s.buf
	if i >= len(b) {
		return "", i, s.eof()
	}
	if b[i] != '"' {
		return "", i, s.failAt(ErrMalformedJSON, "expected member name", i)
	}
	if j := plain(b, i+1); j < len(b) && b[j] == '"' {
		name, i = unsafe.String(&b[i+1], j-i-1), j+1
	} else if name, _, i, err = s.strSlow(i, true); err != nil {
		return "", i, err
	}
	i = skipSpace(b, i)
	if i >= len(b) {
		return "", i, s.eof()
	}
	if b[i] != ':' {
		return "", i, s.failAt(ErrMalformedJSON, "expected ':' after member name", i)
	}
	return name, skipSpace(b, i+1), nil
}

// member decodes the value at b[i] of the top-level member whose attribute
// bit is attr (0 for an extension) into ev, and returns the index after it.
func (s *scanner) member(ev *Event, attr, i int) (int, error) {
	b := s.buf
	if i >= len(b) {
		return i, s.eof()
	}
	switch attr {
	case 0:
		return s.value(i, 1) // an extension: validated and skipped
	case attrData:
		j, err := s.value(i, 1)
		if err != nil {
			return j, err
		}
		ev.Data = b[i:j:j]
		return j, nil
	}

	if b[i] != '"' {
		kind := kindOf(b[i])
		j, err := s.value(i, 1)
		if err != nil {
			return j, err
		}
		s.note(ErrWrongType, "got "+kind+", want string")
		return j, nil
	}
	var (
		v       string
		escaped bool
	)
	if j := plain(b, i+1); j < len(b) && b[j] == '"' {
		v, i = unsafe.String(&b[i+1], j-i-1), j+1
	} else {
		var err error
		if v, escaped, i, err = s.strSlow(i, true); err != nil {
			return i, err
		}
	}
	switch attr {
	case attrSpecVersion:
		switch v {
		case "1.0":
			ev.SpecVersion = v
		case "":
			s.note(ErrMissingAttribute, "empty")
		default:
			s.note(ErrUnsupportedVersion, quoteCut(v)+`, want "1.0"`)
		}
	case attrID:
		ev.ID = v
		s.identifier(v, escaped, true)
	case attrSource:
		ev.Source = v
		s.identifier(v, escaped, true)
	case attrType:
		ev.Type = v
		if v == "" {
			s.note(ErrMissingAttribute, "empty")
		}
	case attrPartitionKey:
		ev.PartitionKey = v
		s.identifier(v, escaped, false)
	case attrSubject:
		ev.Subject = v
	case attrDataContentType:
		ev.DataContentType = v
	case attrDataSchema:
		ev.DataSchema = v
	case attrTime:
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			// err repeats the value uncut: keep it out of the message.
			s.note(ErrBadTime, quoteCut(v)+" is not an RFC 3339 timestamp")
		}
		ev.Time = t
	case attrSequence:
		n, ok := parseSequence(v)
		if !ok {
			s.note(ErrBadSequence, quoteCut(v)+" is not a positive decimal integer without sign or leading zeros")
		}
		ev.Sequence = n
	case attrDataBase64:
		d, ok := decodeBase64(v)
		if !ok {
			s.note(ErrWrongType, "not valid standard base64")
		}
		ev.Data, ev.DataBase64 = d, true
	}
	return i, nil
}

// identifier checks an id, source or partitionkey value; escaped reports
// whether its JSON text had escapes.
func (s *scanner) identifier(v string, escaped, required bool) {
	if v == "" {
		if required {
			s.note(ErrMissingAttribute, "empty")
		}
		return
	}
	if len(v) > s.maxIdent {
		s.note(ErrInvalidIdentifier, strconv.Itoa(len(v))+" bytes, limit "+strconv.Itoa(s.maxIdent))
		return
	}
	// Without escapes, the string scan has ruled out bytes below 0x20.
	i := strings.IndexByte(v, 0x7f)
	if escaped {
		i = indexControl(v)
	}
	if i >= 0 {
		s.note(ErrInvalidIdentifier, fmt.Sprintf("control character U+%04X at byte %d of %s", v[i], i, quoteCut(v)))
	}
}

// indexControl returns the index of the first byte of v below 0x20 or equal
// to 0x7f, or -1. Such bytes never occur inside a multi-byte UTF-8
// sequence, so a byte scan finds exactly the control characters.
func indexControl(v string) int {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 || c == 0x7f {
			return i
		}
	}
	return -1
}

// parseSequence parses a positive decimal integer without sign or leading
// zeros that fits a uint64.
func parseSequence(v string) (uint64, bool) {
	if v == "" || len(v) > 20 || v[0] == '0' {
		return 0, false
	}
	var n uint64
	for i := 0; i < len(v); i++ {
		d := uint64(v[i] - '0')
		if d > 9 {
			return 0, false
		}
		hi, lo := bits.Mul64(n, 10)
		lo, carry := bits.Add64(lo, d, 0)
		if hi != 0 || carry != 0 {
			return 0, false
		}
		n = lo
	}
	return n, true
}

// decodeBase64 decodes standard base64 with padding. Unlike
// base64.StdEncoding alone it rejects line breaks, which that decoder skips.
func decodeBase64(v string) ([]byte, bool) {
	for i := 0; i < len(v); i++ {
		if v[i] == '\r' || v[i] == '\n' {
			return nil, false
		}
	}
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
	// Decode only reads its source, so the string's bytes may back it.
	n, err := base64.StdEncoding.Decode(dst, unsafe.Slice(unsafe.StringData(v), len(v)))
	if err != nil {
		return nil, false
	}
	return dst[:n], true
}

// smallObject is how many member names of one object are kept in a list,
// searched linearly for duplicates; a larger object moves its names to a
// map, so that duplicate detection stays linear in the input.
const smallObject = 16

// frame is an open array or object of a value being scanned.
type frame struct {
	obj bool
	// start is the index in the name list of the object's first member
	// name; the object's names follow it, unless m holds them.
	start int
	m     map[string]struct{}
}

// add records the member name of the object f, whose names start at
// f.start in list, and returns the updated list; it reports false when name
// is a duplicate. (list is passed by value: a pointer would move the
// caller's stack array to the heap.)
func (f *frame) add(list []string, name string) ([]string, bool) {
	if f.m != nil {
		if _, dup := f.m[name]; dup {
			return list, false
		}
		f.m[name] = struct{}{}
		return list, true
	}
	own := list[f.start:]
	for _, n := range own {
		// Comparing lengths and last bytes first keeps most mismatches
		// out of memequal.
		if len(n) == len(name) && (n == "" || n[len(n)-1] == name[len(n)-1] && n == name) {
			return list, false
		}
	}
	if len(own) < smallObject {
		return append(list, name), true
	}
	f.m = make(map[string]struct{}, 2*len(own))
	for _, n := range own {
		f.m[n] = struct{}{}
	}
	f.m[name] = struct{}{}
	return list[:f.start], true
}

// value scans the JSON value at b[i], checking its syntax, UTF-8, depth and
// duplicate member names, and returns the index after it. depth is the
// depth of the container holding the value.
func (s *scanner) value(i, depth int) (int, error) {
	b := s.buf
	if i >= len(b) {
		return i, s.eof()
	}
	switch b[i] {
	case '"':
		if j := plain(b, i+1); j < len(b) && b[j] == '"' {
			return j + 1, nil
		}
		_, _, j, err := s.strSlow(i, false)
		return j, err
	case '{', '[':
		return s.container(i, depth)
	}
	return s.scalar(i)
}

// scalar scans the number or literal at b[i].
func (s *scanner) scalar(i int) (int, error) {
	switch s.buf[i] {
	case 't':
		return s.literal(i, "true")
	case 'f':
		return s.literal(i, "false")
	case 'n':
		return s.literal(i, "null")
	}
	return s.number(i)
}

// container scans the array or object at b[i] without recursion.
func (s *scanner) container(i, depth int) (int, error) {
	b := s.buf
	var (
		stackArr [16]frame
		stack    = stackArr[:0]
		namesArr [32]string
		names    = namesArr[:0]
		err      error
	)
	for {
		// i is at the start of a value.
		if i >= len(b) {
			return i, s.eof()
		}
		switch c := b[i]; c {
		case '{', '[':
			if depth+len(stack)+1 > s.maxDepth {
				return i, s.failAt(ErrTooDeep, "nesting deeper than limit "+strconv.Itoa(s.maxDepth), i)
			}
			stack = append(stack, frame{obj: c == '{', start: len(names)})
			i = skipSpace(b, i+1)
			if i < len(b) && b[i] == c+2 { // '}' or ']'
				i++
				stack = stack[:len(stack)-1]
				break
			}
			if c == '{' {
				if names, i, err = s.nestedName(&stack[len(stack)-1], names, i); err != nil {
					return i, err
				}
			}
			continue
		case '"':
			if j := plain(b, i+1); j < len(b) && b[j] == '"' {
				i = j + 1
			} else if _, _, i, err = s.strSlow(i, false); err != nil {
				return i, err
			}
		default:
			if i, err = s.scalar(i); err != nil {
				return i, err
			}
		}
		// A value is complete: close the containers it completes, then
		// move to the next value.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, s.eof()
			}
			top := &stack[len(stack)-1]
			c := b[i]
			if c == ',' {
				i = skipSpace(b, i+1)
				if top.obj {
					if names, i, err = s.nestedName(top, names, i); err != nil {
						return i, err
					}
				}
				break
			}
			if top.obj && c == '}' || !top.obj && c == ']' {
				i++
				names = names[:top.start]
				*top = frame{}
				stack = stack[:len(stack)-1]
				continue
			}
			if top.obj {
				return i, s.failAt(ErrMalformedJSON, "expected ',' or '}' after member value", i)
			}
			return i, s.failAt(ErrMalformedJSON, "expected ',' or ']' after array element", i)
		}
	}
}

// nestedName scans a member name and its colon inside the nested object
// f, and returns names updated and the index of the member's value.
func (s *scanner) nestedName(f *frame, names []string, i int) ([]string, int, error) {
	start := i
	name, i, err := s.memberName(i)
	if err != nil {
		return names, i, err
	}
	names, ok := f.add(names, name)
	if !ok {
		// The name is payload: say where it is, not what it is.
		return names, i, s.failAt(ErrDuplicateMember, "name repeated in a nested object", start)
	}
	return names, i, nil
}

// skipSpace returns the index of the first byte at or after i that is not
// JSON whitespace.
func skipSpace(b []byte, i int) int {
	for i < len(b) && b[i] <= ' ' && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

func (s *scanner) literal(i int, lit string) (int, error) {
	if len(s.buf)-i < len(lit) || string(s.buf[i:i+len(lit)]) != lit {
		return i, s.failAt(ErrMalformedJSON, "invalid literal", i)
	}
	return i + len(lit), nil
}

// number scans the JSON number at b[i]. What follows it is the container's
// business.
func (s *scanner) number(i int) (int, error) {
	b := s.buf
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		if i >= len(b) {
			return i, s.eof()
		}
		return i, s.failAt(ErrMalformedJSON, "invalid character, expected a value", i)
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return i, s.failAt(ErrMalformedJSON, "invalid number", i)
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return i, s.failAt(ErrMalformedJSON, "invalid number", i)
		}
		i = j
	}
	return i, nil
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// strSlow scans the string whose opening quote is at b[i] and returns the
// index after its closing quote; callers try the plain fast path first.
// With keep it returns the unescaped value: a string pointing into s.buf
// when the JSON text has no escapes, else a new one. Without keep it only
// validates. escaped reports whether the text had escapes.
func (s *scanner) strSlow(i int, keep bool) (v string, escaped bool, next int, err error) {
	b := s.buf
	start := i + 1
	var (
		out []byte // the unescaped value so far, when keep and escaped
		lit = start
	)
	i = start
	for {
		i = plain(b, i)
		if i >= len(b) {
			return "", false, i, s.eof()
		}
		switch c := b[i]; {
		case c == '"':
			switch {
			case !keep || i == start:
				return "", escaped, i + 1, nil
			case !escaped:
				return unsafe.String(&b[start], i-start), false, i + 1, nil
			}
			out = append(out, b[lit:i]...)
			return unsafe.String(unsafe.SliceData(out), len(out)), true, i + 1, nil
		case c == '\\':
			if keep {
				if !escaped {
					out = make([]byte, 0, i-start+32)
				}
				out = append(out, b[lit:i]...)
			}
			escaped = true
			r, n, err := s.escape(i)
			if err != nil {
				return "", false, i, err
			}
			if keep {
				out = utf8.AppendRune(out, r)
			}
			i += n
			lit = i
		case c < 0x20:
			return "", false, i, s.failAt(ErrMalformedJSON, "control character in string", i)
		default: // c >= 0x80
			r, n := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && n == 1 {
				return "", false, i, s.failAt(ErrInvalidUTF8, "invalid UTF-8", i)
			}
			i += n
		}
	}
}

// escape decodes the escape sequence at b[i] == '\\', returning the rune
// and the length of the sequence.
func (s *scanner) escape(i int) (rune, int, error) {
	b := s.buf
	if i+1 >= len(b) {
		return 0, 0, s.eof()
	}
	switch b[i+1] {
	case '"', '\\', '/':
		return rune(b[i+1]), 2, nil
	case 'b':
		return '\b', 2, nil
	case 'f':
		return '\f', 2, nil
	case 'n':
		return '\n', 2, nil
	case 'r':
		return '\r', 2, nil
	case 't':
		return '\t', 2, nil
	case 'u':
		r, ok := hex4(b, i+2)
		if !ok {
			if len(b)-(i+2) < 4 {
				return 0, 0, s.eof()
			}
			return 0, 0, s.failAt(ErrMalformedJSON, "invalid \\u escape", i)
		}
		if r < 0xd800 || r > 0xdfff {
			return r, 6, nil
		}
		if r <= 0xdbff && i+12 <= len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
			if lo, ok := hex4(b, i+8); ok && 0xdc00 <= lo && lo <= 0xdfff {
				return 0x10000 + (r-0xd800)<<10 + (lo - 0xdc00), 12, nil
			}
		}
		return 0, 0, s.failAt(ErrInvalidUTF8, "unpaired surrogate escape", i)
	}
	return 0, 0, s.failAt(ErrMalformedJSON, "invalid escape", i)
}

func hex4(b []byte, i int) (rune, bool) {
	if len(b)-i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// plain returns the index of the first byte at or after i that ends a run
// of plain string bytes: a quote, a backslash, a control byte or a
// non-ASCII byte. It looks at eight bytes at a time.
func plain(b []byte, i int) int {
	const (
		lsb = 0x0101010101010101
		msb = 0x8080808080808080
	)
	for ; i >= 0 && i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i : i+8 : i+8])
		q := x ^ (lsb * '"')
		e := x ^ (lsb * '\\')
		// A byte's high bit is set where it is below 0x20, equals '"' or
		// '\\', or is non-ASCII; borrows only flag bytes above a true
		// match, so the lowest flagged byte is exact.
		t := (x - lsb*0x20 | (q-lsb)&^q | (e-lsb)&^e | x) & msb
		if t != 0 {
			return i + bits.TrailingZeros64(t)/8
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			return i
		}
	}
	return i
}

func kindOf(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	case '"':
		return "string"
	}
	return "number"
}

// note records a fault in the current member's value, unless one is
// recorded already.
func (s *scanner) note(sentinel error, detail string) {
	if s.bad == nil {
		s.bad = &DecodeError{Field: s.field(), Err: sentinel, Detail: detail}
	}
}

func (s *scanner) fail(sentinel error, detail string) *DecodeError {
	return &DecodeError{Field: s.field(), Err: sentinel, Detail: detail}
}

func (s *scanner) failField(field string, sentinel error, detail string) *DecodeError {
	return &DecodeError{Field: field, Err: sentinel, Detail: detail}
}

func (s *scanner) failAt(sentinel error, detail string, off int) *DecodeError {
	return &DecodeError{Field: s.field(), Err: sentinel, Detail: detail + " at offset " + strconv.Itoa(off)}
}

func (s *scanner) eof() *DecodeError {
	return s.failAt(ErrMalformedJSON, "unexpected end of input", len(s.buf))
}

// Validate reports whether the attributes of e, an event built in code,
// make a valid CloudEvent that survives its JSON encoding unchanged: what
// [Decoder.Decode] would accept from e.AppendJSON with every limit at its
// maximum (identifiers of at most [MaxIdentifierBytes] bytes, any size and
// depth), and decode to the same attributes. It returns a [*DecodeError]
// naming the first attribute at fault: a specversion other than "" (taken
// as "1.0") or "1.0"; a missing id, source or type; an identifier that is
// too long or holds a control character; a string attribute that is not
// valid UTF-8; a time that RFC 3339 cannot carry exactly (a year outside
// 0–9999, an offset with seconds); Data that is not one JSON value as
// Decode accepts it (valid UTF-8, no duplicate member names), unless
// DataBase64.
//
// Validate ignores Raw, and allocates nothing unless e is invalid or has a
// Time. A pipeline validates every submitted event that has no Raw,
// because it may store the event (held for sequence ordering, or
// dead-lettered) and decode it again; a decoded event is valid by
// construction.
func (e *Event) Validate() error {
	s := scanner{maxDepth: math.MaxInt, maxIdent: MaxIdentifierBytes}
	switch e.SpecVersion {
	case "", "1.0":
	default:
		if !utf8.ValidString(e.SpecVersion) {
			return &DecodeError{Field: "specversion", Err: ErrInvalidUTF8, Detail: "not valid UTF-8"}
		}
		return &DecodeError{Field: "specversion", Err: ErrUnsupportedVersion, Detail: quoteCut(e.SpecVersion) + `, want "1.0" (or "")`}
	}
	for _, a := range [...]struct {
		bit int
		v   string
	}{
		{attrID, e.ID}, {attrSource, e.Source}, {attrType, e.Type}, {attrPartitionKey, e.PartitionKey},
		{attrSubject, e.Subject}, {attrDataContentType, e.DataContentType}, {attrDataSchema, e.DataSchema},
	} {
		s.attr = a.bit
		if !utf8.ValidString(a.v) {
			return s.fail(ErrInvalidUTF8, "not valid UTF-8: "+quoteCut(a.v))
		}
		switch a.bit {
		case attrID, attrSource:
			s.identifier(a.v, true, true)
		case attrPartitionKey:
			s.identifier(a.v, true, false)
		case attrType:
			if a.v == "" {
				s.note(ErrMissingAttribute, "empty")
			}
		}
		if s.bad != nil {
			return s.bad
		}
	}
	if !e.Time.IsZero() {
		var arr [64]byte
		txt := e.Time.AppendFormat(arr[:0], time.RFC3339Nano)
		if t, err := time.Parse(time.RFC3339Nano, string(txt)); err != nil || !t.Equal(e.Time) {
			return &DecodeError{Field: "time", Err: ErrBadTime, Detail: "not exactly an RFC 3339 timestamp: " + quoteCut(string(txt))}
		}
	}
	if e.Data != nil && !e.DataBase64 {
		s.attr, s.buf = attrData, e.Data
		i, err := s.value(skipSpace(e.Data, 0), 1)
		if err != nil {
			return err
		}
		if s.bad != nil {
			return s.bad
		}
		if skipSpace(e.Data, i) != len(e.Data) {
			return s.failAt(ErrMalformedJSON, "Data must hold one JSON value (or set DataBase64): trailing data", i)
		}
	}
	return nil
}
