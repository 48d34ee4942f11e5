import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { leaseGatingContract } from "./support/LeaseGatingContract.ts"

leaseGatingContract(memoryHarness)
