import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"

/** The theme variables of style.css: the light block (`:root`) and the dark one (inside prefers-color-scheme: dark). */
const css = Fs.readFileSync(new URL("../../src/style.css", import.meta.url), "utf8")
const variables = (block: string) =>
  Object.fromEntries([...block.matchAll(/--([a-z-]+):\s*(#[0-9a-f]{6})/gi)].map((m) => [m[1]!, m[2]!.toLowerCase()]))
const light = variables(/:root\s*\{([^}]*)\}/.exec(css)![1]!)
const dark = variables(/prefers-color-scheme:\s*dark\)\s*\{\s*:root\s*\{([^}]*)\}/.exec(css)![1]!)

const luminance = (hex: string) => {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = Number.parseInt(hex.slice(i, i + 2), 16) / 255
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4
  })
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!
}
/** WCAG 2 contrast ratio. */
const contrast = (a: string, b: string) => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x)
  return (hi! + 0.05) / (lo! + 0.05)
}

/** Text colour on background colour pairs the app uses for text. */
const PAIRS: ReadonlyArray<readonly [string, string]> = [
  ["fg", "bg"], ["fg", "card"], ["muted", "bg"], ["muted", "card"], ["accent", "bg"], ["accent", "card"],
  ["accent-fg", "accent"], ["danger", "bg"], ["danger", "card"], ["ok", "card"], ["warn", "card"], ["fg", "user"]
]

describe("theme contrast (WCAG AA, 4.5:1 for text)", () => {
  for (const [name, theme] of [["light", light], ["dark", dark]] as const) {
    it(`${name} theme`, () => {
      assert.isAbove(Object.keys(theme).length, 10)
      for (const [text, background] of PAIRS) {
        const ratio = contrast(theme[text]!, theme[background]!)
        assert.isAtLeast(ratio, 4.5, `${name}: --${text} on --${background} is ${ratio.toFixed(2)}:1`)
      }
    })
  }
})
