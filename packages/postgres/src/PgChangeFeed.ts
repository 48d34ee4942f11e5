import { ChangeFeed, type CommandSignal, type ListenerState } from "@cowork/services"
import { PgClient } from "@effect/sql-pg"
import { Effect, Layer, Result, Stream } from "effect"
import {
  COMMANDS_CHANNEL,
  type CommandsMessage,
  EVENTS_CHANNEL,
  type EventsMessage,
  formatCommandSignal,
  parseCommandsMessage,
  parseEventsMessage
} from "./Channels.ts"
import * as ListenConnection from "./ListenConnection.ts"
import { ListenHub, type ListenOptions } from "./ListenConnection.ts"

export type ChangeFeedOptions = ListenOptions

/**
 * The events and commands channels over the process's ONE listening connection (`ListenHub`, shared with the
 * delivery feed), fanned out in memory to every subscriber; a re-established connection is announced on `resyncs` for
 * each of these channels after its `LISTEN` is active. A subscription returns once its channel's first `LISTEN`
 * attempt is over (LISTEN_TIMEOUT at most).
 */
const make = Effect.gen(function*() {
  const pg = yield* PgClient.PgClient
  const hub = yield* ListenHub
  const channel = <A>(name: string, parse: (payload: string) => A | undefined) =>
    Effect.map(hub.subscribe(name), Stream.filterMap((payload: string) => {
      const parsed = parse(payload)
      return parsed === undefined ? Result.failVoid : Result.succeed(parsed)
    }))
  const mine = (channelName: string) => channelName === EVENTS_CHANNEL || channelName === COMMANDS_CHANNEL

  // Session changes and revocations share one channel (one LISTEN).
  const events = channel(EVENTS_CHANNEL, parseEventsMessage)
  const sessionChanges = Effect.map(events, Stream.filterMap((message: EventsMessage) =>
    "session" in message ? Result.succeed(message.session) : Result.failVoid))
  const revocations = Effect.map(events, Stream.filterMap((message: EventsMessage) =>
    "revocation" in message ? Result.succeed(message.revocation) : Result.failVoid))
  // Command signals and workflow changes share one channel (one LISTEN).
  const commands = channel(COMMANDS_CHANNEL, parseCommandsMessage)
  const commandSignals = Effect.map(commands, Stream.filterMap((message: CommandsMessage) =>
    "signal" in message ? Result.succeed(message.signal) : Result.failVoid))
  const workflowChanges = Effect.map(commands, Stream.filterMap((message: CommandsMessage) =>
    "workflow" in message ? Result.succeed<void>(undefined) : Result.failVoid))

  const notifyCommand = Effect.fn("ChangeFeed.notifyCommand")(function*(signal: CommandSignal) {
    yield* pg.notify(COMMANDS_CHANNEL, formatCommandSignal(signal)).pipe(Effect.orDie)
  })

  const resyncs = Effect.map(hub.resyncs, Stream.filter((resync) => mine(resync.channel)))

  const listeners = Effect.map(hub.states, (states): ReadonlyArray<ListenerState> => states.filter((state) => mine(state.channel)))

  return ChangeFeed.of({ sessionChanges, commandSignals, notifyCommand, revocations, workflowChanges, listeners, resyncs })
  })

/** With the shared `ListenConnection.layer`: built once per layer build, so the process's feeds share one connection. */
export const layer = Layer.effect(ChangeFeed, make).pipe(Layer.provide(ListenConnection.layer))
/** With a listening connection of its own, probed as `options` say (tests). */
export const layerWith = (options: ChangeFeedOptions) => Layer.effect(ChangeFeed, make).pipe(Layer.provide(ListenConnection.layerWith(options)))

