import { memoryRows } from "@cowork/services"
import { Effect, Layer } from "effect"
import * as Crypto from "node:crypto"
import { byokStoreContract } from "./support/ByokStoreContract.ts"

const rows = memoryRows()

byokStoreContract(
  "memory",
  Layer.empty,
  Effect.succeed(rows),
  Effect.sync(() => `org_${Crypto.randomBytes(6).toString("hex")}`),
  // Every row (none is sealed under a key named "none"), envelopes as text.
  Effect.map(rows.sealedWithOtherThan("none", 1_000), (all) =>
    JSON.stringify(all.map((row) => ({ ...row, envelope: Buffer.from(row.envelope).toString("latin1") }))))
)
