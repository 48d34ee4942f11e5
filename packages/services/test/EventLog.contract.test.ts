import { memoryHarness } from "./support/ControlPlaneHarness.ts"
import { eventLogContract } from "./support/EventLogContract.ts"

eventLogContract(memoryHarness)
