import { PgCommandQueue, PgEventLog, PgLeaseStore, PgSessionStore, PgTokens, PgWorkflowStore } from "@cowork/postgres"
import { Tokens } from "@cowork/services"
import { Effect, Layer } from "effect"
import { workflowStoreContract } from "../../services/test/support/WorkflowStoreContract.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

workflowStoreContract(
  "postgres",
  Layer.mergeAll(PgWorkflowStore.layer, PgLeaseStore.layer, PgCommandQueue.layer, PgEventLog.layer, PgTokens.layer, PgSessionStore.layer).pipe(
    Layer.provideMerge(TestDatabase.layer())
  ),
  Effect.gen(function*() {
    const tokens = yield* Tokens
    return (yield* tokens.createOrg(`org-${globalThis.crypto.randomUUID().slice(0, 8)}`)).orgId
  }).pipe(Effect.orDie)
)
