// Package onceflow is the vocabulary of onceflow: the CloudEvents [Event],
// its [Identity], the stored [Outcome], the transactional [Effects] a
// handler writes, and the strict JSON decoder with one sentinel error per
// class of bad input.
//
// onceflow runs event pipelines whose effects happen once although events
// arrive duplicated, out of order and across crashes. See the pipeline
// package for the engine and the dedup package for the durable store.
package onceflow
