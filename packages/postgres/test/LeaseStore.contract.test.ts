import { leaseStoreContract } from "../../services/test/support/LeaseStoreContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

leaseStoreContract(pgHarness)
