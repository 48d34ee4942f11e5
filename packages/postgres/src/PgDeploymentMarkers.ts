import { DeploymentMarkers } from "@cowork/services"
import { Effect, Layer, Option } from "effect"
import { SqlClient } from "effect/sql"

/** `cloud_deployment_markers`: one row per marker, the first insert wins (`ON CONFLICT DO NOTHING`). */
const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const read = (name: string) =>
    Effect.map(
      sql<{ value: string }>`SELECT value FROM cloud_deployment_markers WHERE name = ${name}`,
      (rows) => Option.fromNullishOr(rows[0]?.value)
    ).pipe(Effect.orDie)
  return DeploymentMarkers.of({
    read,
    establish: (name, candidate) =>
      sql`INSERT INTO cloud_deployment_markers (name, value) VALUES (${name}, ${candidate}) ON CONFLICT (name) DO NOTHING`.pipe(
        Effect.orDie,
        Effect.andThen(read(name)),
        Effect.map(Option.getOrElse(() => candidate))
      )
  })
})

export const layer = Layer.effect(DeploymentMarkers, make)
