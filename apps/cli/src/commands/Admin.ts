import { PgAudit, PgOffboarding, PgQuotas, PgRetention, PgTokens, PgWorkerRegistry, PgWorkflowStore } from "@cowork/postgres"
import { Command } from "effect/cli"
import { Layer } from "effect"
import * as ControlPlaneDatabase from "../ControlPlaneDatabase.ts"
import * as AdminArtifacts from "./AdminArtifacts.ts"
import * as AdminCredential from "./AdminCredential.ts"
import * as AdminOrg from "./AdminOrg.ts"
import * as AdminPool from "./AdminPool.ts"
import * as AdminRetention from "./AdminRetention.ts"
import * as AdminSecrets from "./AdminSecrets.ts"
import * as AdminToken from "./AdminToken.ts"
import * as AdminWorker from "./AdminWorker.ts"
import * as AdminWorkflow from "./AdminWorkflow.ts"

/**
 * `cowork admin ...`: operator tasks straight against the database (`OPEN_COWORK_DATABASE_URL`, or the embedded
 * cluster in `OPEN_COWORK_DATA_DIR` when no `up` process holds it).
 */
export const command = Command.make("admin").pipe(
  Command.withDescription("Operator tasks against the control-plane database"),
  Command.withSubcommands([
    AdminToken.command,
    AdminOrg.command,
    AdminPool.command,
    AdminWorker.command,
    AdminCredential.command,
    AdminWorkflow.command,
    AdminSecrets.command,
    AdminRetention.command,
    AdminArtifacts.command
  ]),
  Command.provide(Layer.mergeAll(
    PgTokens.layer,
    PgWorkerRegistry.layer,
    PgWorkflowStore.layerConfig,
    PgOffboarding.layer,
    PgAudit.layer,
    PgRetention.layer,
    PgQuotas.layer
  ).pipe(
    Layer.provideMerge(ControlPlaneDatabase.layer({ embedded: true, applicationName: "cowork-admin", maxConnections: 2 }))
  ))
)
