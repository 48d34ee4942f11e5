import { Layer } from "effect"
import * as WebhookHandlers from "./WebhookHandlers.ts"
import * as WorkflowHandlers from "./WorkflowHandlers.ts"

/** The workflow routes (tenant API and the signed webhook trigger). */
export const layer = Layer.mergeAll(WorkflowHandlers.layer, WebhookHandlers.layer)
