import type { CommandId, RunnableCommand, Lease, StaleOwner } from "@cowork/domain"
import { Context, type Effect, type Option } from "effect"

/** The session mailbox as its owner sees it: the next pending command, in order, fenced by the lease. */
export class CommandQueue extends Context.Service<CommandQueue, {
  /**
   * Marks the oldest `pending` command of the leased session `running` under the lease epoch and returns it;
   * `None` when the mailbox is empty. Fails with `StaleOwner` when the lease is no longer live.
   */
  readonly next: (lease: Lease) => Effect.Effect<Option.Option<RunnableCommand>, StaleOwner>
  /** Status of a command (tests and operators). */
  readonly status: (commandId: CommandId | string) => Effect.Effect<Option.Option<{ readonly status: string; readonly attemptCount: number }>>
}>()("cowork/CommandQueue") {}
