import { PgAudit } from "@cowork/postgres"
import { Layer } from "effect"
import { auditContract } from "../../services/test/support/AuditContract.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

auditContract("postgres", PgAudit.layer.pipe(Layer.provideMerge(TestDatabase.layer())))
