import { artifactsContract } from "../../services/test/support/ArtifactsContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

artifactsContract(pgHarness)
