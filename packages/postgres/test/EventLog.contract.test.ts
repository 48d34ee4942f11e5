import { eventLogContract } from "../../services/test/support/EventLogContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

eventLogContract(pgHarness)
