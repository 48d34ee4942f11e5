import { controlPlaneStatusContract } from "../../services/test/support/ControlPlaneStatusContract.ts"
import { pgHarness } from "./support/PgHarness.ts"

controlPlaneStatusContract(pgHarness)
