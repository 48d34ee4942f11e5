import { deliveryFeedContract } from "../../services/test/support/DeliveryFeedContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

deliveryFeedContract(pgHarness)
