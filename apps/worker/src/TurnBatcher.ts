import { Cause, Effect, Exit, Queue, type Scope, Stream } from "effect"

/**
 * Adaptive batching of a turn's output: each `append` carries every item that arrived while the previous one was
 * in flight, so a fast producer costs one write per burst and a slow one still streams item by item.
 *
 * The burst that ends the stream is not appended: it is returned, so the caller can ride it in its closing write.
 * When the stream fails, what arrived before the failure is appended first, then the failure propagates.
 */
export const appendInBursts = <A, E, B, E2, R>(
  items: Stream.Stream<A, E>,
  toDraft: (item: A) => B,
  append: (burst: Array<B>) => Effect.Effect<unknown, E2, R>
): Effect.Effect<Array<B>, E | E2, R | Scope.Scope> => Effect.gen(function*() {
  const queue = yield* Stream.toQueue(items, { capacity: 1024 })
  while (true) {
    const taken = yield* Queue.takeAll(queue).pipe(
      Effect.catchIf(Cause.isDone, () => Effect.succeed(undefined))
    )
    if (taken === undefined) return []
    const burst = taken.map(toDraft)
    // Whatever else is already queued joins the burst; the queue also tells whether the stream has ended.
    for (let next = Queue.takeUnsafe(queue); next !== undefined; next = Queue.takeUnsafe(queue)) {
      if (Exit.isSuccess(next)) {
        burst.push(toDraft(next.value))
        continue
      }
      if (Cause.isDone(Cause.squash(next.cause))) return burst
      yield* append(burst)
      return yield* Effect.failCause(next.cause as Cause.Cause<E>)
    }
    yield* append(burst)
  }
})
