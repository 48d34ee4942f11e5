import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import { launch } from "./GatewayLaunch.ts"

/** The gateway alone (`cowork gateway` is the usual entry point). */
NodeRuntime.runMain(launch)
