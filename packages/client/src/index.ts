export * from "./SseStream.ts"
