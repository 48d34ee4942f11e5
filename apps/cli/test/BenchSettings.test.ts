import { assert, describe, it } from "@effect/vitest"
import { envInt, envInts } from "../src/bench/stack.ts"

/** The `BENCH_*` knobs: a value that is not a whole number stops the bench naming the variable, never runs as NaN. */
describe("bench settings", () => {
  const withEnv = <A>(value: string | undefined, f: () => A): A => {
    const before = process.env.BENCH_TEST_KNOB
    if (value === undefined) delete process.env.BENCH_TEST_KNOB
    else process.env.BENCH_TEST_KNOB = value
    try {
      return f()
    } finally {
      if (before === undefined) delete process.env.BENCH_TEST_KNOB
      else process.env.BENCH_TEST_KNOB = before
    }
  }

  it("unset or empty: the default; a whole number: itself", () => {
    assert.strictEqual(withEnv(undefined, () => envInt("BENCH_TEST_KNOB", 20)), 20)
    assert.strictEqual(withEnv(" ", () => envInt("BENCH_TEST_KNOB", 20)), 20)
    assert.strictEqual(withEnv("3000", () => envInt("BENCH_TEST_KNOB", 20)), 3000)
    assert.strictEqual(withEnv("0", () => envInt("BENCH_TEST_KNOB", 0, 0)), 0)
    assert.deepStrictEqual(withEnv(undefined, () => envInts("BENCH_TEST_KNOB", [100, 300])), [100, 300])
    assert.deepStrictEqual(withEnv("10, 30,50", () => envInts("BENCH_TEST_KNOB", [100, 300])), [10, 30, 50])
  })

  it("anything else is an error naming the variable and the value", () => {
    for (const bad of ["abc", "2k", "1.5", "-3", "0", "1e3", "Infinity"]) {
      assert.throws(() => withEnv(bad, () => envInt("BENCH_TEST_KNOB", 20)), `BENCH_TEST_KNOB: expected a whole number ≥ 1, got "${bad}"`)
    }
    assert.throws(() => withEnv("100,,300", () => envInts("BENCH_TEST_KNOB", [1])), `BENCH_TEST_KNOB: expected a whole number ≥ 1, got ""`)
    assert.throws(() => withEnv("100,x", () => envInts("BENCH_TEST_KNOB", [1])), `got "x"`)
  })
})
