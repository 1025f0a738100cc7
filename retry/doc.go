// Package retry decides whether and when a failed attempt is retried, and
// when an event goes to the dead letters instead.
//
// The package never sleeps and never starts a goroutine; a Policy reads no
// clock either: its core is pure decision functions over the times the
// caller passes in. A caller (the pipeline's
// shard worker) asks [Policy.Next] what follows a failure and schedules the
// next attempt itself, so that other keys keep flowing while one key waits.
//
// # Policy
//
// [Policy] is a plain struct. Zero fields take defaults:
//
//	InitialInterval  100ms  backoff cap after the first failure
//	Multiplier       2      growth of the cap per failure (>= 1)
//	MaxInterval      30s    largest cap
//	MaxAttempts      5      handler runs, the first included; < 0 unlimited
//	MaxElapsed       none   from the first attempt to the start of a retry
//	AttemptTimeout   none   per attempt, applied with Policy.AttemptContext
//	Jitter           FullJitter
//	Classify         DefaultClassify
//
// After attempt n fails, the cap is min(MaxInterval, InitialInterval ×
// Multiplier^(n-1)) ([Policy.Backoff]): 100ms, 200ms, 400ms, ... 30s. Under
// FullJitter (the AWS "full jitter" scheme) the delay is drawn uniformly from
// [0, cap] with the caller's [Rand], so the same seed gives the same
// delays; under NoJitter it is the cap. Next gives up with a dead-letter
// reason: [ReasonPermanent] for an error marked by [Permanent],
// [ReasonPanic] for a [*PanicError], [ReasonMaxAttempts], or
// [ReasonMaxElapsed] when the retry would start after first+MaxElapsed.
//
// # Budget
//
// A [Budget] is a token bucket shared by a pipeline's shards: each retry
// (not first attempts) takes a token, tokens refill at a fixed rate, and
// [Budget.Admit] turns a retry that finds the bucket empty into a wait for
// the next token ([WhenEmptyWait]) or a dead letter with [ReasonBudget]
// ([WhenEmptyDeadLetter]). Its state and counters are in [Budget.Stats].
//
// # Concurrency
//
// A Policy is a value: its methods are safe for concurrent use as long as
// its Classify is. A Budget is safe for concurrent use, lock-free and exact
// (it never grants more than capacity + rate × elapsed). A [Rand] such as
// *math/rand/v2.Rand is not safe for concurrent use: give each goroutine its
// own. Time comes in as arguments (Next) or through an injected [Clock]
// (Budget), so tests are deterministic with a fake clock or inside a
// testing/synctest bubble.
//
// # Panics
//
// [Call] runs a handler and turns a panic into a [*PanicError] with the
// stack; its message quotes the panic value cut to 200 bytes and never
// includes the stack, so no payload reaches it unless the handler put it in
// the panic value.
//
// # Caveats
//
//   - context.Canceled is retryable under DefaultClassify: it usually means
//     the pipeline is stopping, and an abandoned event must be redelivered,
//     not dead-lettered. Check your own context before calling Next.
//   - Under FullJitter, whether MaxElapsed stops a retry depends on the
//     delay drawn, as in other full-jitter implementations.
//   - A WhenEmptyWait reservation is not refunded if the caller drops the
//     retry, and its wait may carry the retry past MaxElapsed (Next gives up
//     when that attempt fails).
//   - The dead-letter reasons are stable strings stored with events; they
//     never change.
package retry
