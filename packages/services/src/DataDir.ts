import { Config } from "effect"

/** `OPEN_COWORK_DATA_DIR`: where the embedded Postgres, local objects and local keys live (default `.cowork`). */
export const DataDir = Config.String("OPEN_COWORK_DATA_DIR").pipe(Config.withDefault(".cowork"))
