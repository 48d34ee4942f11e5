import type { Command } from "effect/cli"

/**
 * The subcommands `argv` names under `root` (`cowork admin org create --name x` → `["admin", "org", "create"]`), walked
 * as the parser walks them: a word naming a subcommand (or its alias) of the command reached so far goes one level
 * down; other words (flags, their values, arguments) are passed over; a command without subcommands ends the walk.
 */
export const commandPath = (root: Command.Command.Any, argv: ReadonlyArray<string>): ReadonlyArray<string> => {
  const path: Array<string> = []
  let current = root
  for (const word of argv) {
    const subcommands = current.subcommands.flatMap((group) => group.commands)
    if (subcommands.length === 0) break
    const next = subcommands.find((command) => command.name === word || command.alias === word)
    if (next === undefined) continue
    path.push(next.name)
    current = next
  }
  return path
}
