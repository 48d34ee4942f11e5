import { leaseStoreContract } from "./support/LeaseStoreContract.ts"
import { memoryHarness } from "./support/ControlPlaneHarness.ts"

leaseStoreContract(memoryHarness)
