import { PgIdentity, PgOffboarding, PgSessionStore, PgTokens } from "@cowork/postgres"
import { Layer } from "effect"
import { offboardingContract } from "../../services/test/support/OffboardingContract.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

offboardingContract(
  "postgres",
  Layer.mergeAll(PgOffboarding.layer, PgIdentity.layer, PgTokens.layer, PgSessionStore.layer).pipe(Layer.provideMerge(TestDatabase.layer()))
)
