import * as PgAudit from "@cowork/postgres/PgAudit"
import { Layer } from "effect"
import { auditContract } from "../../services/test/support/AuditContract.ts"
import * as TestDatabase from "../../../test/support/TestDatabase.ts"

auditContract("postgres", PgAudit.layer.pipe(Layer.provideMerge(TestDatabase.layer())))
