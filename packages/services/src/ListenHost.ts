import { Config } from "effect"

const LISTEN_HOST_ENV = "OPEN_COWORK_CLOUD_HOST"

/**
 * `OPEN_COWORK_CLOUD_HOST`: the interface the web port and the worker's liveness port bind. Loopback by default, so
 * a laptop's `cowork up` is not reachable from the network; the container image sets `0.0.0.0`.
 */
export const ListenHost = Config.String(LISTEN_HOST_ENV).pipe(Config.withDefault("127.0.0.1"))
