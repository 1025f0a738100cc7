// Package onceflow is the vocabulary of onceflow: the CloudEvents [Event],
// its [Identity], the stored [Outcome], the transactional [Effects] a
// handler writes, and the strict JSON decoder with one sentinel error per
// class of bad input.
//
// onceflow runs event pipelines whose effects happen once although events
// arrive duplicated, out of order and across crashes. See the pipeline
// package for the engine and the dedup package for the durable store.
//
// # Decoding
//
// [DecodeEvent] and [Decoder.Decode] read one CloudEvents 1.0 event in the
// JSON structured format: exactly one JSON object, such as one line of a
// JSON Lines file (surrounding whitespace, the line's "\r\n" included, is
// allowed). They reject bad input at ingress, before anything is stored,
// with a [*DecodeError] that wraps one sentinel per class, for errors.Is,
// and that [Reason] maps to a stable name for dead-letter records:
//
//	ErrMalformedJSON       malformed_json           not one JSON object: truncated, trailing data, bad escape
//	ErrWrongType           wrong_type               an attribute of the wrong JSON type (null included),
//	                                                data_base64 not base64, both data and data_base64
//	ErrMissingAttribute    missing_attribute        specversion, id, source or type absent or ""
//	ErrEventTooLarge       event_too_large          more than WithMaxEventBytes, default 1 MiB
//	ErrTooDeep             too_deep                 nesting deeper than WithMaxDepth, default 64
//	ErrInvalidIdentifier   invalid_identifier       id, source or partitionkey longer than
//	                                                WithMaxIdentifierBytes (default 256, at most
//	                                                MaxIdentifierBytes, 8 KiB) or holding a
//	                                                control character
//	ErrDuplicateMember     duplicate_member         a member name repeated in an object, after unescaping
//	ErrInvalidUTF8         invalid_utf8             invalid UTF-8 or an unpaired surrogate escape
//	ErrUnsupportedVersion  unsupported_specversion  specversion other than "1.0"
//	ErrBadSequence         bad_sequence             sequence not a positive decimal integer string
//	ErrBadTime             bad_time                 time not RFC 3339
//
// Unlike encoding/json, the decoder does not keep the last of two members
// of the same name (a forged second "id" would slip through), does not
// replace invalid UTF-8, and matches member names exactly. Members it does
// not know are extension attributes: their values are checked as JSON and
// skipped. Messages name the field and the limit and quote attribute values
// cut to 64 bytes; they never repeat the payload.
//
// Events built in code are checked by [Event.Validate] against the same
// rules, with the largest limits: a pipeline with a store refuses an event
// built in code that fails it, because it may store the event and decode it
// again. [MaxIdentifierBytes] (8 KiB) caps an identifier everywhere, and
// [MaxStateKeyBytes] a handler's state key, so that every accepted event
// and every handler's writes fit the store's keys.
//
// The size limit is checked before any parsing. The nesting limit bounds
// the whole event, the event object being depth 1; the decoder does not
// recurse, so no limit can exhaust the stack, and duplicate detection stays
// linear in the size of the input.
//
// A [Decoder] is immutable and safe for concurrent use; the zero Decoder
// applies the defaults. Decoding copies the input once, into [Event.Raw],
// and the event's strings and Data share that copy: Raw and Data must not be
// modified. A typical event of 300 bytes decodes with two allocations,
// about five times faster than encoding/json, which checks less (see
// BenchmarkDecode).
package onceflow
