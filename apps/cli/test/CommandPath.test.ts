import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { Command, Flag } from "effect/cli"
import { commandPath } from "../src/CommandPath.ts"

const leaf = (name: string) => Command.make(name, { to: Flag.String("to").pipe(Flag.optional) }, () => Effect.void)
const root = Command.make("cowork").pipe(
  Command.withSubcommands([
    leaf("up"),
    Command.make("admin").pipe(Command.withSubcommands([
      Command.make("org").pipe(Command.withSubcommands([leaf("create"), leaf("offboard")]))
    ]))
  ])
)

describe("commandPath", () => {
  it("names the subcommands argv reaches, passing over flags and arguments; a leaf ends the walk", () => {
    assert.deepStrictEqual(commandPath(root, ["admin", "org", "offboard", "org_1", "--to", "admin"]), ["admin", "org", "offboard"])
    assert.deepStrictEqual(commandPath(root, ["--log", "x", "admin", "org", "create"]), ["admin", "org", "create"])
    assert.deepStrictEqual(commandPath(root, ["up"]), ["up"])
    assert.deepStrictEqual(commandPath(root, []), [])
    assert.deepStrictEqual(commandPath(root, ["nope"]), [])
  })
})
