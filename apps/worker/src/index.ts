export * from "./WorkerRole.ts"
export * from "./WorkerConfig.ts"
export * from "./WorkerStats.ts"
