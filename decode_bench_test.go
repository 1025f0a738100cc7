package onceflow_test

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onceflow/onceflow"
)

// realisticEvent returns a CloudEvent of exactly size bytes shaped like an
// order event: the usual attributes, and data that from 1 KiB on holds a
// nested customer and as many line items as fit; a note pads it.
func realisticEvent(size int) []byte {
	build := func(extra, note string) string {
		return `{"specversion":"1.0","id":"01HV8Z3K9Q2W5X7Y4N6M1P0R3T",` +
			`"source":"https://shop.example/orders","type":"com.example.order.created",` +
			`"time":"2026-03-01T12:30:45Z","datacontenttype":"application/json",` +
			`"partitionkey":"cust-48151","sequence":"42","data":{"orderId":"o-1029",` +
			`"total":129.95` + extra + `,"note":"` + note + `"}}`
	}
	extra := ""
	if size >= 1024 {
		customer := `,"customer":{"id":"c-48151","name":"Ada Lovelace","email":"ada@example.com",` +
			`"address":{"street":"12 Analytical Way","city":"London","zip":"N1 9GU","country":"GB"}}`
		items := func(list []string) string { return `,"items":[` + strings.Join(list, ",") + `]` }
		var list []string
		for i := 0; ; i++ {
			next := append(list, fmt.Sprintf(`{"sku":"SKU-%05d","name":"Widget \u00e9dition %d","qty":%d,`+
				`"price":%d.99,"tags":["blue","large"],"dims":{"w":10,"h":20.5,"unit":"cm"}}`, i, i, 1+i%3, 10+i))
			if len(build(customer+items(next), "")) > size {
				break
			}
			list = next
		}
		extra = customer + items(list)
	}
	pad := size - len(build(extra, ""))
	if pad < 0 {
		panic(fmt.Sprintf("realisticEvent: size %d below the minimum %d", size, size-pad))
	}
	return []byte(build(extra, strings.Repeat("x", pad)))
}

// jsonEvent is what encoding/json needs for the same attributes.
type jsonEvent struct {
	SpecVersion     string          `json:"specversion"`
	ID              string          `json:"id"`
	Source          string          `json:"source"`
	Type            string          `json:"type"`
	Time            time.Time       `json:"time"`
	Subject         string          `json:"subject"`
	DataContentType string          `json:"datacontenttype"`
	DataSchema      string          `json:"dataschema"`
	Data            json.RawMessage `json:"data"`
	DataBase64      []byte          `json:"data_base64"`
	PartitionKey    string          `json:"partitionkey"`
	Sequence        string          `json:"sequence"`
}

// BenchmarkDecode compares DecodeEvent with the encoding/json baseline: an
// Unmarshal into an equivalent struct, plus the sequence parse. The baseline
// checks less (no duplicate members, no UTF-8, no depth limit besides its
// own 10,000, no required attributes).
func BenchmarkDecode(b *testing.B) {
	for _, size := range []int{300, 4096} {
		in := realisticEvent(size)
		if _, err := onceflow.DecodeEvent(in); err != nil {
			b.Fatalf("size=%d: %v", size, err)
		}
		b.Run(fmt.Sprintf("impl=onceflow/size=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			var d onceflow.Decoder
			for b.Loop() {
				if _, err := d.Decode(in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(fmt.Sprintf("impl=encoding-json/size=%d", size), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(in)))
			for b.Loop() {
				var ev jsonEvent
				if err := json.Unmarshal(in, &ev); err != nil {
					b.Fatal(err)
				}
				if _, err := strconv.ParseUint(ev.Sequence, 10, 64); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

func TestRealisticEventSizes(t *testing.T) {
	t.Parallel()
	for _, size := range []int{300, 1024, 4096, 10000} {
		in := realisticEvent(size)
		if len(in) != size {
			t.Errorf("realisticEvent(%d) has %d bytes", size, len(in))
		}
		ev, err := onceflow.DecodeEvent(in)
		if err != nil {
			t.Fatalf("realisticEvent(%d): %v", size, err)
		}
		if !json.Valid(in) || ev.Sequence != 42 || ev.PartitionKey != "cust-48151" {
			t.Errorf("realisticEvent(%d) decodes to %+v", size, ev)
		}
	}
}
