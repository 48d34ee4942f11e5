import { describe, expect, it } from "vitest"
import { makeId, newEventId } from "../src/Ids.ts"

describe("makeId", () => {
  it("is the prefix, 9 base-36 time digits and 16 hex digits", () => {
    expect(makeId("evt")).toMatch(/^evt_[0-9a-z]{9}[0-9a-f]{16}$/)
  })

  it("never repeats across refills of the random pool", () => {
    // 4 KiB pool, 8 bytes per id: 5,000 ids cross ten refills.
    const ids = Array.from({ length: 5_000 }, () => newEventId())
    expect(new Set(ids).size).toBe(ids.length)
    expect(new Set(ids.map((id) => id.slice(-16))).size).toBe(ids.length)
  })

  it("sorts by creation time across milliseconds", () => {
    const first = makeId("cmd")
    const later = `cmd_${(Date.now() + 1).toString(36).padStart(9, "0")}`
    expect(first.slice(0, 13) < later).toBe(true)
  })
})
