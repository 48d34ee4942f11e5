import { readBoundedBody } from "@cowork/services"
import { assert, it } from "@effect/vitest"
import { Effect } from "effect"
import { HttpServerRequest } from "effect/http"

/** A raw body read under a cap: whole when within it, refused on content-length or while streaming when past it. */

/** A POST whose body arrives in `chunks` with no content-length (chunked), counting how many chunks were pulled. */
const streamed = (chunks: ReadonlyArray<string>) => {
  let pulled = 0
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (pulled === chunks.length) return controller.close()
      controller.enqueue(new TextEncoder().encode(chunks[pulled++]!))
    }
  })
  const request = HttpServerRequest.fromWeb(new Request("http://local/hook", { method: "POST", body, duplex: "half" } as RequestInit))
  return { request, pulled: () => pulled }
}

it.effect("a body within the cap is read whole, in order", () =>
  Effect.gen(function*() {
    const { request } = streamed(["abc", "def", "g"])
    assert.strictEqual((yield* readBoundedBody(request, 7))?.toString("utf8"), "abcdefg")
  }))

it.effect("a streamed body past the cap is refused, and reading stops at the chunk that crossed it", () =>
  Effect.gen(function*() {
    const { request, pulled } = streamed(["abcd", "efgh", "ijkl", "mnop"])
    assert.isUndefined(yield* readBoundedBody(request, 6))
    assert.isAtMost(pulled(), 3, "the rest of the body is not read")
  }))

it.effect("a declared content-length past the cap is refused before reading", () =>
  Effect.gen(function*() {
    let pulled = false
    const body = new ReadableStream<Uint8Array>({
      pull() {
        pulled = true
        throw new Error("the body was read")
      }
    })
    const request = HttpServerRequest.fromWeb(
      new Request("http://local/hook", { method: "POST", body, duplex: "half", headers: { "content-length": "20" } } as RequestInit)
    )
    assert.strictEqual(request.headers["content-length"], "20")
    assert.isUndefined(yield* readBoundedBody(request, 10))
    assert.isFalse(pulled)
  }))
