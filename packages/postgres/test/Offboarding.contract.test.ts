import {
  PgByokStore,
  PgChannelStore,
  PgDeliveryFeed,
  PgEventLog,
  PgIdentity,
  PgLeaseStore,
  PgOffboarding,
  PgSessionStore,
  PgTokens,
  PgWorkerRegistry
} from "@cowork/postgres"
import { SecretAdapter } from "@cowork/services"
import { Layer } from "effect"
import { offboardingContract } from "../../services/test/support/OffboardingContract.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

offboardingContract(
  "postgres",
  Layer.mergeAll(
    PgOffboarding.layer,
    PgIdentity.layer,
    PgTokens.layer,
    PgSessionStore.layer,
    PgWorkerRegistry.layer,
    PgByokStore.layer,
    PgChannelStore.layer,
    PgDeliveryFeed.layer,
    PgEventLog.layer,
    PgLeaseStore.layer
  ).pipe(
    Layer.provideMerge(Layer.merge(TestDatabase.layer(), SecretAdapter.layerMemory))
  )
)
