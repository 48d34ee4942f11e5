import { leaseGatingContract } from "../../services/test/support/LeaseGatingContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

leaseGatingContract(pgHarness)
