export * from "./CoworkClient.ts"
export * from "./SseStream.ts"
