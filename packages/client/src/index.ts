export * from "./CoworkClient.ts"
export * from "./SseStream.ts"
export * from "./SessionEvents.ts"
