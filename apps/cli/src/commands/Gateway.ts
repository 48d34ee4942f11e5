import { GatewayLaunch } from "@cowork/gateway"
import { Command } from "effect/cli"

export const command = Command.make("gateway", {}, () => GatewayLaunch.launch).pipe(
  Command.withDescription(
    "The channel gateway: drains the cloud's delivery feed to Telegram / Slack / email / webhooks and turns signed inbound messages into prompts (needs OPEN_COWORK_GATEWAY_CLOUD_URL and OPEN_COWORK_GATEWAY_TOKEN; port OPEN_COWORK_GATEWAY_PORT, default 8790)"
  )
)
