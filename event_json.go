package onceflow

import (
	"encoding/json"
	"strconv"
	"time"
)

// AppendJSON appends e in the CloudEvents 1.0 JSON structured format, as a
// single line without a trailing newline. When e has Raw bytes (it was
// decoded), those are appended unchanged; otherwise the attributes are
// encoded, with Data as the "data" member (or "data_base64" when DataBase64
// is set). Data must then hold valid JSON.
func (e *Event) AppendJSON(dst []byte) []byte {
	if e.Raw != nil {
		return append(dst, e.Raw...)
	}
	dst = append(dst, '{')
	dst = appendMember(dst, "specversion", nonEmpty(e.SpecVersion, "1.0"), true)
	dst = appendMember(dst, "id", e.ID, false)
	dst = appendMember(dst, "source", e.Source, false)
	dst = appendMember(dst, "type", e.Type, false)
	if !e.Time.IsZero() {
		dst = appendMember(dst, "time", e.Time.Format(time.RFC3339Nano), false)
	}
	for _, m := range [...]struct{ k, v string }{
		{"subject", e.Subject}, {"datacontenttype", e.DataContentType},
		{"dataschema", e.DataSchema}, {"partitionkey", e.PartitionKey},
	} {
		if m.v != "" {
			dst = appendMember(dst, m.k, m.v, false)
		}
	}
	if e.Sequence > 0 {
		dst = appendMember(dst, "sequence", strconv.FormatUint(e.Sequence, 10), false)
	}
	if e.Data != nil {
		if e.DataBase64 {
			b, _ := json.Marshal(e.Data) // []byte encodes as standard base64
			dst = append(dst, `,"data_base64":`...)
			dst = append(dst, b...)
		} else {
			dst = append(dst, `,"data":`...)
			dst = append(dst, e.Data...)
		}
	}
	return append(dst, '}')
}

func appendMember(dst []byte, k, v string, first bool) []byte {
	if !first {
		dst = append(dst, ',')
	}
	kb, _ := json.Marshal(k)
	vb, _ := json.Marshal(v) // strings always marshal
	dst = append(dst, kb...)
	dst = append(dst, ':')
	return append(dst, vb...)
}

func nonEmpty(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
