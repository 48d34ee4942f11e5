import { Audit } from "@cowork/services"
import { auditContract } from "./support/AuditContract.ts"

auditContract("memory", Audit.layerMemory)
