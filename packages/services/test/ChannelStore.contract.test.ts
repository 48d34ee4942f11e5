import { channelStoreContract } from "./support/ChannelStoreContract.ts"
import { memoryHarness } from "./support/ControlPlaneHarness.ts"

channelStoreContract(memoryHarness)
