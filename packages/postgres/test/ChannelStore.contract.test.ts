import { channelStoreContract } from "../../services/test/support/ChannelStoreContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

channelStoreContract(pgHarness)
