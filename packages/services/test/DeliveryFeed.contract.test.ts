import { deliveryFeedContract } from "./support/DeliveryFeedContract.ts"
import { memoryHarness } from "./support/ControlPlaneHarness.ts"

deliveryFeedContract(memoryHarness)
