import { type PgClient, PgConnection } from "@effect/sql-pg"
import { Duration, Effect } from "effect"

/**
 * How long establishing a listening connection (connect + `LISTEN`) may take before it is retried, and how long a
 * subscription waits for its channel's first one.
 */
export const LISTEN_TIMEOUT = Duration.seconds(3)

/**
 * `LISTEN` on `channel` over a connection of its own, opened with the client's settings and closed with the scope.
 *
 * Never a pooled connection (`PgClient.listen` reserves one for as long as it listens): the pool does not grow when
 * a connection it just handed out is reserved, so a borrower asleep in its queue at that moment was never woken and
 * every later borrower queued behind it; with the listener holding its connection forever, no release came to wake
 * them and the process's queries hung (seen as the ChangeFeed contract test timing out under load). A listener
 * outside the pool also leaves all of `maxConnections` to queries.
 */
export const listen = (pg: PgClient.PgClient, channel: string) =>
  Effect.flatMap(PgConnection.make({ ...pg.config, multiplex: false }), (connection) => connection.listen(channel))
